package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/heraldhq/herald/pkg/event/internal/fastschema"

	"github.com/heraldhq/herald/schemas"
)

// Log is the family of streams an event type is published to: raw facts go to
// the EVENTS log, derived incidents to INCIDENTS, the notifier's ledger to
// NOTIFICATIONS. It is also the first token of the type's subjects.
type Log string

const (
	LogEvents        Log = "events"
	LogIncidents     Log = "incidents"
	LogNotifications Log = "notifications"
)

// Owner is the one role that may publish an event type: the NATS
// permissions (pkg/access) and POST /v1/events are derived from it, so that
// nobody else can forge it (docs/security.md).
type Owner string

const (
	OwnerProducer        Owner = "producer"
	OwnerDispatcher      Owner = "dispatcher"
	OwnerProviderAdapter Owner = "provider-adapter"
	OwnerIncident        Owner = "incident"
	OwnerNotifier        Owner = "notifier"
)

// definitions is the catalog: adding an event type is one struct, one schema
// file and one line here.
func definitions() []*Def {
	return []*Def{
		define[OTPGenerated](LogEvents, 1, OwnerDispatcher),
		define[OTPDLTDispatch](LogEvents, 2, OwnerDispatcher),
		define[OTPDLTFallback](LogEvents, 2, OwnerProviderAdapter),
		define[DLTPayloadReady](LogEvents, 1, OwnerProviderAdapter),
		define[ProviderResponseReceived](LogEvents, 1, OwnerProviderAdapter),
		define[ProviderResponseFailed](LogEvents, 1, OwnerProviderAdapter),
		define[OTPDLTHardFailure](LogEvents, 1, OwnerProviderAdapter),
		define[OTPDeliveryCompleted](LogEvents, 1, OwnerProviderAdapter),
		define[OTPNotificationFailed](LogEvents, 1, OwnerProviderAdapter),
		define[OTPRevoked](LogEvents, 1, OwnerDispatcher),
		define[OTPVerified](LogEvents, 1, OwnerDispatcher),
		define[OTPVerificationFailed](LogEvents, 1, OwnerDispatcher),
		define[OTPDLTActivationStatus](LogEvents, 1, OwnerDispatcher),
		define[OTPCutoverStatus](LogEvents, 1, OwnerDispatcher),
		define[OTPConfigHealth](LogEvents, 1, OwnerDispatcher),
		define[OTPDeliveryReceipt](LogEvents, 1, OwnerProviderAdapter),
		define[IntegrationCallCompleted](LogEvents, 1, OwnerProducer),
		define[ClockTick](LogEvents, 1, OwnerIncident),
		define[IncidentRulesLoaded](LogEvents, 1, OwnerIncident),
		define[IncidentOpened](LogIncidents, 1, OwnerIncident),
		define[IncidentEscalated](LogIncidents, 1, OwnerIncident),
		define[IncidentResolved](LogIncidents, 1, OwnerIncident),
		define[IncidentSuppressed](LogIncidents, 1, OwnerIncident),
		define[SlackMessagePosted](LogNotifications, 1, OwnerNotifier),
		define[SlackMessageUpdated](LogNotifications, 1, OwnerNotifier),
		define[SlackPostAttempted](LogNotifications, 1, OwnerNotifier),
		define[SlackMessageDeleted](LogNotifications, 1, OwnerNotifier),
		define[NotificationRouted](LogNotifications, 1, OwnerNotifier),
		define[NotificationFailed](LogNotifications, 1, OwnerNotifier),
		define[SubscriptionCreated](LogNotifications, 1, OwnerNotifier),
		define[SubscriptionRemoved](LogNotifications, 1, OwnerNotifier),
		define[IncidentAcknowledged](LogNotifications, 1, OwnerNotifier),
		define[SilenceCreated](LogNotifications, 1, OwnerNotifier),
		define[SilenceExpired](LogNotifications, 1, OwnerNotifier),
		define[NotificationSuppressed](LogNotifications, 1, OwnerNotifier),
		define[PagerDutyEventSent](LogNotifications, 1, OwnerNotifier),
	}
}

// Def is one event type of the catalog.
type Def struct {
	Type      Type
	Version   int
	Log       Log
	Owner     Owner
	SchemaURI string
	GoType    reflect.Type
	// Description and Fields come from the schema, the single source for docs.
	Description string
	Fields      []Field
	// Example is the schema's first example: documentation and test fixture.
	Example json.RawMessage

	schema *jsonschema.Schema
	fast   *fastschema.Validator // nil when the schema is outside its subset
	decode func([]byte) (Data, error)
}

// Field describes one top-level property of an event type's schema.
type Field struct {
	Name        string
	Type        string
	Required    bool
	Description string
}

func define[T Data](log Log, version int, owner Owner) *Def {
	var zero T
	return &Def{
		Type:    zero.EventType(),
		Version: version,
		Log:     log,
		Owner:   owner,
		GoType:  reflect.TypeOf(zero),
		decode: func(b []byte) (Data, error) {
			var v T
			// The data has been validated: decode it with the faster json/v2
			// decoder (the future encoding/json/v2), which also refuses
			// duplicate member names.
			if err := jsonv2.Unmarshal(b, &v); err != nil {
				return nil, err
			}
			return v, nil
		},
	}
}

// Errors returned by Encode and Decode; test for them with errors.Is / errors.As.
var (
	ErrUnknownType = errors.New("unknown event type")
	ErrMalformed   = errors.New("malformed event data")
)

// SchemaError reports an event whose data violates its type's schema.
type SchemaError struct {
	Type       Type
	Violations []Violation
}

// Violation is one schema violation: where in the data, and what.
type Violation struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (e *SchemaError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Path + ": " + v.Message
	}
	return fmt.Sprintf("%s does not match its schema: %s", e.Type, strings.Join(parts, "; "))
}

// Catalog knows every event type: its Go struct, schema and log.
type Catalog struct {
	defs  map[Type]*Def
	order []*Def
}

// NewCatalog compiles the embedded schemas of every defined event type.
func NewCatalog() (*Catalog, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	cat := &Catalog{defs: map[Type]*Def{}}
	for _, d := range definitions() {
		name := schemas.File(string(d.Type), d.Version)
		raw, err := fs.ReadFile(schemas.FS, name)
		if err != nil {
			return nil, fmt.Errorf("event catalog: schema for %s: %w", d.Type, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("event catalog: parse %s: %w", name, err)
		}
		d.SchemaURI = schemas.BaseURI + name
		if id, _ := doc.(map[string]any)["$id"].(string); id != d.SchemaURI {
			return nil, fmt.Errorf("event catalog: %s has $id %q, want %q", name, id, d.SchemaURI)
		}
		if err := c.AddResource(d.SchemaURI, doc); err != nil {
			return nil, fmt.Errorf("event catalog: add %s: %w", name, err)
		}
		if d.schema, err = c.Compile(d.SchemaURI); err != nil {
			return nil, fmt.Errorf("event catalog: compile %s: %w", name, err)
		}
		if d.fast, err = fastschema.Compile(doc); err != nil && !errors.Is(err, fastschema.ErrUnsupported) {
			return nil, fmt.Errorf("event catalog: compile %s: %w", name, err)
		}
		d.Description, d.Fields = describe(doc)
		if exs, _ := doc.(map[string]any)["examples"].([]any); len(exs) > 0 {
			if d.Example, err = json.Marshal(exs[0]); err != nil {
				return nil, fmt.Errorf("event catalog: example of %s: %w", name, err)
			}
		}
		if _, dup := cat.defs[d.Type]; dup {
			return nil, fmt.Errorf("event catalog: %s defined twice", d.Type)
		}
		cat.defs[d.Type] = d
		cat.order = append(cat.order, d)
	}
	return cat, nil
}

// Defs lists the catalog's types in declaration order.
func (c *Catalog) Defs() []*Def { return c.order }

// Def returns the definition of an event type.
func (c *Catalog) Def(t Type) (*Def, error) {
	d, ok := c.defs[t]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, t)
	}
	return d, nil
}

// Subject is where an event is published: its own subject if set, else
// "<log>.<type>".
func (c *Catalog) Subject(e *Event) (string, error) {
	d, err := c.Def(e.Type)
	if err != nil {
		return "", err
	}
	prefix := string(d.Log) + "."
	if e.Subject == "" {
		return prefix + string(e.Type), nil
	}
	if !strings.HasPrefix(e.Subject, prefix) {
		return "", fmt.Errorf("event %s: subject %q must start with %q", e.Type, e.Subject, prefix)
	}
	return e.Subject, nil
}

// Encode fills e.Raw from e.Data (unless Raw is already set) and validates it
// against the type's schema. It also stamps e.DataSchema.
func (c *Catalog) Encode(e *Event) error {
	if e.Data != nil {
		e.Type = e.Data.EventType()
	}
	d, err := c.Def(e.Type)
	if err != nil {
		return err
	}
	if e.Raw == nil {
		if e.Data == nil {
			return fmt.Errorf("%w: %s has no data", ErrMalformed, e.Type)
		}
		if e.Raw, err = json.Marshal(e.Data); err != nil {
			return fmt.Errorf("encode %s: %w", e.Type, err)
		}
	}
	if err := d.validate(e.Raw); err != nil {
		return err
	}
	if e.Data == nil {
		if e.Data, err = d.decode(e.Raw); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMalformed, e.Type, err)
		}
	}
	e.DataSchema = d.SchemaURI
	return nil
}

// Decode validates e.Raw against the schema of e.Type and decodes it into e.Data.
func (c *Catalog) Decode(e *Event) error {
	d, err := c.Def(e.Type)
	if err != nil {
		return err
	}
	if err := d.validate(e.Raw); err != nil {
		return err
	}
	if e.Data, err = d.decode(e.Raw); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, e.Type, err)
	}
	return nil
}

// Validate checks data against the schema of an event type without decoding
// it: for readers that only pick a few fields out of the JSON.
func (c *Catalog) Validate(t Type, raw []byte) error {
	d, err := c.Def(t)
	if err != nil {
		return err
	}
	return d.validate(raw)
}

func (d *Def) validate(raw []byte) error {
	if d.fast != nil && d.fast.Valid(raw) {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, d.Type, err)
	}
	err := d.schema.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("validate %s: %w", d.Type, err)
	}
	return &SchemaError{Type: d.Type, Violations: violations(ve)}
}

// violations flattens a validation error tree to its leaves, which name the
// field and the broken constraint.
func violations(ve *jsonschema.ValidationError) []Violation {
	var out []Violation
	var walk func(u jsonschema.OutputUnit)
	walk = func(u jsonschema.OutputUnit) {
		if u.Error != nil && len(u.Errors) == 0 {
			path := u.InstanceLocation
			if path == "" {
				path = "/"
			}
			out = append(out, Violation{Path: path, Message: u.Error.String()})
		}
		for _, c := range u.Errors {
			walk(c)
		}
	}
	walk(*ve.BasicOutput())
	slices.SortStableFunc(out, func(a, b Violation) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func describe(doc any) (string, []Field) {
	m, _ := doc.(map[string]any)
	desc, _ := m["description"].(string)
	props, _ := m["properties"].(map[string]any)
	required := map[string]bool{}
	if rs, ok := m["required"].([]any); ok {
		for _, r := range rs {
			if s, ok := r.(string); ok {
				required[s] = true
			}
		}
	}
	fields := make([]Field, 0, len(props))
	for name, p := range props {
		pm, _ := p.(map[string]any)
		f := Field{Name: name, Required: required[name]}
		f.Description, _ = pm["description"].(string)
		switch t := pm["type"].(type) {
		case string:
			f.Type = t
		case []any:
			var ts []string
			for _, x := range t {
				if s, ok := x.(string); ok {
					ts = append(ts, s)
				}
			}
			f.Type = strings.Join(ts, "|")
		}
		if f.Type == "string" {
			if fm, ok := pm["format"].(string); ok {
				f.Type = "string (" + fm + ")"
			}
			if en, ok := pm["enum"].([]any); ok {
				var vs []string
				for _, x := range en {
					vs = append(vs, fmt.Sprint(x))
				}
				f.Type = "enum: " + strings.Join(vs, ", ")
			}
		}
		fields = append(fields, f)
	}
	slices.SortFunc(fields, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	return desc, fields
}

// Schema returns the type's JSON Schema document.
func (d *Def) Schema() []byte {
	b, _ := fs.ReadFile(schemas.FS, schemas.File(string(d.Type), d.Version))
	return b
}
