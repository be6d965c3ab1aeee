package access

import (
	"fmt"
	"maps"
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
	// Responses lets the role answer, once, each request it receives on a
	// subject it serves (the JWT's allow-responses), whatever the
	// requester's inbox.
	Responses bool `json:"responses,omitempty"`
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
	// Serves are control subjects it answers requests on; Requests those
	// it sends requests to (operators' commands to a running service).
	Serves, Requests []string
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
// IncidentRebuild is where herald incidents rebuild asks the active
// incident writer to rebuild its projection (core NATS request/reply).
const IncidentRebuild = "herald.control.incident.rebuild"

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
// It is long because it is the table, one entry per role, read at a glance.
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
			Serves:      []string{IncidentRebuild},
		},
		Notifier: {
			Owner: event.OwnerNotifier,
			Durables: []Durable{
				{Stream: streamIncidents, Name: "notifier", Filter: "incidents.>"},
				{Stream: streamNotifications, Name: "notifier-acks", Filter: "notifications.incident_acknowledged.>"},
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
			Requests:      []string{IncidentRebuild},
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

// permissions turns one role's grant into its NATS permissions. The
// subjects keep the order they are added in (the docs show them so).
func permissions(cat *event.Catalog, r Role, g Grant, durables map[string]Role) Permissions {
	b := &pubSubjects{info: slices.Clone(g.StreamInfo)}
	b.add(api + "INFO")
	b.ownEvents(cat, g.Owner)
	b.consumers(g)
	if len(g.Reads) > 0 {
		b.denyDurables(r, durables)
	}
	b.gets(g)
	for _, c := range g.Counters {
		b.add(c.Filter)
		b.info = append(b.info, c.Stream)
	}
	b.leases(g.Leases)
	b.buckets(g.Buckets)
	b.admin(g)
	slices.Sort(b.info)
	for _, s := range slices.Compact(b.info) {
		b.add(api + "STREAM.INFO." + s)
	}
	b.add(g.Requests...)
	sub := append(slices.Concat(g.Subscribe, g.Serves), InboxPrefix(r)+".>")
	return Permissions{
		Publish:   Subjects{Allow: dedup(b.pub), Deny: dedup(b.deny)},
		Subscribe: Subjects{Allow: dedup(sub)},
		Responses: len(g.Serves) > 0,
	}
}

// pubSubjects collects a role's publish permissions as permissions builds them,
// and the streams whose info it may read.
type pubSubjects struct {
	pub, deny, info []string
}

func (b *pubSubjects) add(s ...string) { b.pub = append(b.pub, s...) }

// ownEvents allows publishing the catalog's events the owner writes.
func (b *pubSubjects) ownEvents(cat *event.Catalog, owner event.Owner) {
	if owner == "" {
		return
	}
	for _, d := range cat.Defs() {
		if d.Owner == owner {
			subj := string(d.Log) + "." + string(d.Type)
			b.add(subj, subj+".>")
		}
	}
}

// consumers allows the grant's durables (with their acks and dead letters),
// its other dead letters, and its ordered reads.
func (b *pubSubjects) consumers(g Grant) {
	for _, d := range g.Durables {
		b.add(api+"CONSUMER.CREATE."+d.Stream+"."+d.Name+"."+d.Filter,
			api+"CONSUMER.INFO."+d.Stream+"."+d.Name,
			api+"CONSUMER.MSG.NEXT."+d.Stream+"."+d.Name,
			"dlq."+d.Stream+"."+d.Name+".*",
			// Acks are publishes to the message's reply subject.
			"$JS.ACK."+d.Stream+"."+d.Name+".>")
	}
	for _, d := range g.DeadLetters {
		b.add("dlq." + d.Stream + "." + d.Consumer + ".*")
	}
	for _, rd := range g.Reads {
		if rd.Filter == "" {
			b.add(api+"CONSUMER.CREATE."+rd.Stream+".*", api+"CONSUMER.CREATE."+rd.Stream+".*.>")
		} else {
			b.add(api + "CONSUMER.CREATE." + rd.Stream + ".*." + rd.Filter)
		}
		// nats.go deletes an ordered consumer when it resets or stops it.
		b.add(api+"CONSUMER.MSG.NEXT."+rd.Stream+".*", api+"CONSUMER.DELETE."+rd.Stream+".*")
		b.info = append(b.info, rd.Stream)
	}
}

// denyDurables keeps a role's ordered reads off the durables: ordered
// consumers have random names, so the wildcards consumers allows must not
// reach another role's durable (to steal its messages or change its filter).
func (b *pubSubjects) denyDurables(r Role, durables map[string]Role) {
	for _, name := range sortedKeys(durables) {
		// No durable is ever deleted by a client, its owner included.
		b.deny = append(b.deny, api+"CONSUMER.DELETE.*."+name)
		if durables[name] == r {
			continue
		}
		b.deny = append(b.deny, api+"CONSUMER.CREATE.*."+name, api+"CONSUMER.CREATE.*."+name+".>",
			api+"CONSUMER.MSG.NEXT.*."+name, "$JS.ACK.*."+name+".>")
	}
}

// gets allows the grant's direct gets, by last subject and by sequence.
func (b *pubSubjects) gets(g Grant) {
	for _, l := range g.LastBy {
		b.add(api + "DIRECT.GET." + l.Stream + "." + l.Filter)
		b.info = append(b.info, l.Stream)
	}
	for _, s := range g.GetBySeq {
		b.add(api+"DIRECT.GET."+s, api+"STREAM.MSG.GET."+s)
	}
}

// leases allows each lease's one key: create, renew (compare-and-set) and
// release it; read it and watch it (an ordered push consumer, with flow
// control).
func (b *pubSubjects) leases(leases []string) {
	for _, l := range leases {
		key := "$KV." + leaseBucket + "." + l
		b.add(key, api+"DIRECT.GET.KV_"+leaseBucket+"."+key,
			api+"CONSUMER.CREATE.KV_"+leaseBucket+".*."+key, api+"CONSUMER.DELETE.KV_"+leaseBucket+".*",
			"$JS.FC.KV_"+leaseBucket+".>")
		b.info = append(b.info, "KV_"+leaseBucket)
	}
}

// buckets allows the buckets key by key: put, create, update, delete and
// purge of a key are publishes on $KV.<bucket>.<key>; get is a direct get;
// watch and keys are ordered consumers on the bucket's subjects.
func (b *pubSubjects) buckets(buckets []string) {
	for _, k := range buckets {
		b.add("$KV."+k+".>", api+"DIRECT.GET.KV_"+k+".$KV."+k+".>",
			api+"CONSUMER.CREATE.KV_"+k+".*.$KV."+k+".>", api+"CONSUMER.MSG.NEXT.KV_"+k+".*",
			api+"CONSUMER.DELETE.KV_"+k+".*")
		b.info = append(b.info, "KV_"+k)
	}
}

// admin allows the grant's stream administration.
func (b *pubSubjects) admin(g Grant) {
	if g.ListStreams {
		b.add(api+"STREAM.NAMES", api+"STREAM.LIST")
	}
	if g.ManageStreams {
		b.add(api+"STREAM.CREATE.*", api+"STREAM.UPDATE.*")
	}
	for _, s := range g.DeleteMsgs {
		b.add(api + "STREAM.MSG.DELETE." + s)
	}
	for _, s := range g.Purge {
		b.add(api + "STREAM.PURGE." + s)
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

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
