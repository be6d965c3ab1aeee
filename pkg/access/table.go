package access

import (
	"fmt"
	"slices"

	"github.com/heraldhq/herald/pkg/event"
)

// Subjects is an allow list and a deny list; the server refuses what no
// allow entry matches and what any deny entry matches.
type Subjects struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

// Permissions are what a role may publish (including JetStream API
// requests, which are publishes) and subscribe to.
type Permissions struct {
	Publish   Subjects `json:"publish"`
	Subscribe Subjects `json:"subscribe"`
}

// Durable is a durable consumer a role owns. Each has exactly one filter
// subject: nats.go then creates it with
// $JS.API.CONSUMER.CREATE.<stream>.<durable>.<filter>, so the server checks
// the filter against the role's permissions (with several filters the
// subject cannot carry them, and the body would go unchecked).
type Durable struct {
	Stream, Name, Filter string
}

// Read is a stream a role reads with ordered (ephemeral) consumers. Filter
// "" is the whole stream with any filters; otherwise only that one filter.
type Read struct {
	Stream, Filter string
}

// DeadLetter is where a reader without a durable files what it cannot use:
// dlq.<stream>.<consumer>.<seq>.
type DeadLetter struct {
	Stream, Consumer string
}

// Grant is what a role is allowed to do, in Herald's terms; Table turns
// grants into NATS subjects.
type Grant struct {
	// Owner's event types are the ones the role publishes (on
	// <log>.<type> and <log>.<type>.>); "" for none.
	Owner event.Owner
	// Durables are the role's own durable consumers; their dead letters go
	// to dlq.<stream>.<durable>.<seq>.
	Durables []Durable
	// DeadLetters are further names the role writes dead letters under (a
	// projection that dead-letters without a durable).
	DeadLetters []DeadLetter
	// Reads are the streams it reads with ordered consumers.
	Reads []Read
	// LastBy are "stream subject" pairs it reads the last message of
	// (direct get by subject); a subject may end in ">".
	LastBy []Read
	// GetBySeq are streams it reads single messages of by sequence.
	GetBySeq []string
	// StreamInfo are the streams whose info it reads (Read streams and
	// buckets are included anyway).
	StreamInfo []string
	// Buckets are the key-value buckets it reads and writes, key by key.
	Buckets []string
	// Subscribe are core NATS subjects it listens to.
	Subscribe []string
	// Counters are subjects of counter streams it adds to (Nats-Incr):
	// limits shared by the role's processes.
	Counters []Read
	// Leases are the keys of the lease bucket (HERALD_LEASES) it competes
	// for: one writer of a single-writer target at a time (pkg/lease).
	Leases []string
	// ListStreams lets it list the streams.
	ListStreams bool
	// ManageStreams lets it create and update any stream and bucket (never
	// delete one).
	ManageStreams bool
	// DeleteMsgs and Purge are the streams whose messages it may delete
	// one by one, or purge.
	DeleteMsgs, Purge []string
}

// Herald's streams, as named in streams/*.yaml.
const (
	streamRateLimits    = "RATE_LIMITS"
	leaseBucket         = "HERALD_LEASES"
	streamEvents        = "EVENTS"
	streamIncidents     = "INCIDENTS"
	streamNotifications = "NOTIFICATIONS"
	streamDLQ           = "DLQ"
)

// Grants is the table: what each role may do. It is the one place that
// says it; docs/security.md shows it (TestSecurityDocMatchesTheTable).
func Grants() map[Role]Grant {
	producer := Grant{Owner: event.OwnerProducer}
	logs := []string{streamEvents, streamIncidents, streamNotifications, streamDLQ}
	var all []Read
	for _, s := range logs {
		all = append(all, Read{Stream: s})
	}
	return map[Role]Grant{
		Dispatcher: {
			Owner: event.OwnerDispatcher,
			Durables: []Durable{
				{Stream: streamEvents, Name: "dispatcher-otp-outcomes", Filter: "events.otp_notification_failed"},
			},
			// Synchronous sends wait for completions the log has stored.
			Reads:      []Read{{Stream: streamEvents, Filter: "events.otp_delivery_completed"}},
			Buckets:    []string{"OTP_CODES", "OTP_IDEMPOTENCY", "OTP_LIMITS"},
			Counters:   []Read{{Stream: streamRateLimits, Filter: "ratelimits.app.>"}},
			StreamInfo: []string{streamDLQ},
		},
		ProviderAdapter: {
			Owner: event.OwnerProviderAdapter,
			Durables: []Durable{
				{Stream: streamEvents, Name: "provider-adapter", Filter: "events.otp_dlt_dispatch"},
				{Stream: streamEvents, Name: "provider-adapter-fallback", Filter: "events.otp_dlt_fallback"},
			},
			Buckets:    []string{"OTP_DELIVERY"},
			StreamInfo: []string{streamEvents, streamDLQ},
		},
		Incident: {
			Owner:       event.OwnerIncident,
			Reads:       []Read{{Stream: streamEvents}, {Stream: streamIncidents}},
			LastBy:      []Read{{Stream: streamEvents, Filter: "events.incident_rules_loaded"}},
			DeadLetters: []DeadLetter{{Stream: streamEvents, Consumer: "incident"}},
			Buckets:     []string{"INCIDENT_STATE"},
			Leases:      []string{"incident"},
			StreamInfo:  []string{streamDLQ},
		},
		Notifier: {
			Owner: event.OwnerNotifier,
			Durables: []Durable{
				{Stream: streamIncidents, Name: "notifier", Filter: "incidents.>"},
			},
			Reads:      []Read{{Stream: streamIncidents}, {Stream: streamNotifications}},
			LastBy:     []Read{{Stream: streamNotifications, Filter: "notifications.>"}},
			StreamInfo: []string{streamDLQ},
			Leases:     []string{"notifier"},
		},
		Producer: producer,
		Bridge:   producer,
		OperatorRead: {
			// The logs, and who holds each single-writer lease.
			Reads:       append(all, Read{Stream: "KV_" + leaseBucket}),
			GetBySeq:    logs,
			LastBy:      []Read{{Stream: streamEvents, Filter: "events.>"}, {Stream: streamIncidents, Filter: "incidents.>"}, {Stream: streamNotifications, Filter: "notifications.>"}, {Stream: streamDLQ, Filter: "dlq.>"}},
			StreamInfo:  []string{"*"},
			ListStreams: true,
		},
		OperatorAdmin: {
			StreamInfo:    []string{"*"},
			ListStreams:   true,
			ManageStreams: true,
			DeleteMsgs:    []string{streamDLQ},
			Purge:         []string{streamDLQ},
		},
	}
}

// Table turns the grants into each role's NATS permissions.
func Table(cat *event.Catalog) (map[Role]Permissions, error) {
	grants := Grants()
	durables := map[string]Role{}
	for _, r := range Roles() {
		for _, d := range grants[r].Durables {
			if other, dup := durables[d.Name]; dup {
				return nil, fmt.Errorf("access: durable %s granted to %s and %s", d.Name, other, r)
			}
			durables[d.Name] = r
		}
	}
	out := map[Role]Permissions{}
	for _, r := range Roles() {
		out[r] = permissions(cat, r, grants[r], durables)
	}
	return out, nil
}

const api = "$JS.API."

func permissions(cat *event.Catalog, r Role, g Grant, durables map[string]Role) Permissions {
	var pub, sub, deny []string
	add := func(s ...string) { pub = append(pub, s...) }
	add(api + "INFO")
	if g.Owner != "" {
		for _, d := range cat.Defs() {
			if d.Owner == g.Owner {
				subj := string(d.Log) + "." + string(d.Type)
				add(subj, subj+".>")
			}
		}
	}
	info := slices.Clone(g.StreamInfo)
	for _, d := range g.Durables {
		add(api+"CONSUMER.CREATE."+d.Stream+"."+d.Name+"."+d.Filter,
			api+"CONSUMER.INFO."+d.Stream+"."+d.Name,
			api+"CONSUMER.MSG.NEXT."+d.Stream+"."+d.Name,
			"dlq."+d.Stream+"."+d.Name+".*",
			// Acks are publishes to the message's reply subject.
			"$JS.ACK."+d.Stream+"."+d.Name+".>")
	}
	for _, d := range g.DeadLetters {
		add("dlq." + d.Stream + "." + d.Consumer + ".*")
	}
	for _, rd := range g.Reads {
		if rd.Filter == "" {
			add(api+"CONSUMER.CREATE."+rd.Stream+".*", api+"CONSUMER.CREATE."+rd.Stream+".*.>")
		} else {
			add(api + "CONSUMER.CREATE." + rd.Stream + ".*." + rd.Filter)
		}
		// nats.go deletes an ordered consumer when it resets or stops it.
		add(api+"CONSUMER.MSG.NEXT."+rd.Stream+".*", api+"CONSUMER.DELETE."+rd.Stream+".*")
		info = append(info, rd.Stream)
	}
	if len(g.Reads) > 0 {
		// Ordered consumers have random names: the wildcard above must not
		// reach another role's durable (to steal its messages or change its
		// filter).
		for _, name := range sortedKeys(durables) {
			// No durable is ever deleted by a client, its owner included.
			deny = append(deny, api+"CONSUMER.DELETE.*."+name)
			if durables[name] == r {
				continue
			}
			deny = append(deny, api+"CONSUMER.CREATE.*."+name, api+"CONSUMER.CREATE.*."+name+".>",
				api+"CONSUMER.MSG.NEXT.*."+name, "$JS.ACK.*."+name+".>")
		}
	}
	for _, l := range g.LastBy {
		add(api + "DIRECT.GET." + l.Stream + "." + l.Filter)
		info = append(info, l.Stream)
	}
	for _, s := range g.GetBySeq {
		add(api+"DIRECT.GET."+s, api+"STREAM.MSG.GET."+s)
	}
	for _, c := range g.Counters {
		add(c.Filter)
		info = append(info, c.Stream)
	}
	for _, l := range g.Leases {
		// Create, renew (compare-and-set) and release the one key; read it
		// and watch it (an ordered push consumer, with flow control).
		key := "$KV." + leaseBucket + "." + l
		add(key, api+"DIRECT.GET.KV_"+leaseBucket+"."+key,
			api+"CONSUMER.CREATE.KV_"+leaseBucket+".*."+key, api+"CONSUMER.DELETE.KV_"+leaseBucket+".*",
			"$JS.FC.KV_"+leaseBucket+".>")
		info = append(info, "KV_"+leaseBucket)
	}
	for _, b := range g.Buckets {
		// Key by key: put, create, update, delete and purge of a key are
		// publishes on $KV.<bucket>.<key>; get is a direct get; watch and
		// keys are ordered consumers on the bucket's subjects.
		add("$KV."+b+".>", api+"DIRECT.GET.KV_"+b+".$KV."+b+".>",
			api+"CONSUMER.CREATE.KV_"+b+".*.$KV."+b+".>", api+"CONSUMER.MSG.NEXT.KV_"+b+".*",
			api+"CONSUMER.DELETE.KV_"+b+".*")
		info = append(info, "KV_"+b)
	}
	if g.ListStreams {
		add(api+"STREAM.NAMES", api+"STREAM.LIST")
	}
	if g.ManageStreams {
		add(api+"STREAM.CREATE.*", api+"STREAM.UPDATE.*")
	}
	for _, s := range g.DeleteMsgs {
		add(api + "STREAM.MSG.DELETE." + s)
	}
	for _, s := range g.Purge {
		add(api + "STREAM.PURGE." + s)
	}
	slices.Sort(info)
	for _, s := range slices.Compact(info) {
		add(api + "STREAM.INFO." + s)
	}
	sub = append(sub, g.Subscribe...)
	sub = append(sub, InboxPrefix(r)+".>")
	return Permissions{
		Publish:   Subjects{Allow: dedup(pub), Deny: dedup(deny)},
		Subscribe: Subjects{Allow: dedup(sub)},
	}
}

func dedup(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
