package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// streamNames are the JetStream streams Herald defines: its logs and the
// streams behind its key-value buckets.
func streamNames(t *testing.T) []string {
	t.Helper()
	defs, err := streams.Load(streams.DefaultConfig(), app.ServiceStreamDefs()...)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range defs {
		if d.Kind == "kv" {
			names = append(names, "KV_"+d.Name)
		} else {
			names = append(names, d.Name)
		}
	}
	return names
}

func TestAnonymousClientsAreRefused(t *testing.T) {
	srv := heraldtest.StartSecureServer(t)
	a := apptest.StartApp(t, apptest.WithTargets(app.Notifier))
	for name, url := range map[string]string{"secure server": srv.ClientURL(), "herald serve's embedded server": a.NATSURL} {
		t.Run(name, func(t *testing.T) {
			nc, err := nats.Connect(url)
			if err == nil {
				nc.Close()
				t.Fatal("an anonymous client connected")
			}
			if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
				t.Errorf("refused with %v, want an authorization violation", err)
			}
		})
	}
}

// publishedBy is the role whose credentials may publish def: its owner,
// and the bridge for what producers own.
func mayPublish(r access.Role, def *event.Def) bool {
	return access.Role(def.Owner) == r || (r == access.Bridge && def.Owner == event.OwnerProducer)
}

// Every role publishes its own types, and the server refuses it every other
// one: the whole catalog, so a new type is covered by the table it gets.
func TestEachEventTypeIsPublishedOnlyByItsOwner(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	cat := heraldtest.Catalog(t)
	for _, r := range access.Roles() {
		t.Run(string(r), func(t *testing.T) {
			nc := heraldtest.DialAs(t, srv.ClientURL(), srv.CredsDir, r)
			js, err := jetstream.New(nc.Conn)
			if err != nil {
				t.Fatal(err)
			}
			for _, def := range cat.Defs() {
				subjects := []string{string(def.Log) + "." + string(def.Type), string(def.Log) + "." + string(def.Type) + ".x.1"}
				for _, subj := range subjects {
					if mayPublish(r, def) {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						_, err := js.Publish(ctx, subj, []byte(`{}`))
						cancel()
						if err != nil {
							t.Errorf("%s may not publish its own %s: %v", r, subj, err)
						}
						continue
					}
					if err := nc.Publish(subj, []byte(`{}`)); err != nil {
						t.Fatal(err)
					}
					if !nc.Refused(t, subj) {
						t.Errorf("%s published %s (owned by %s)", r, subj, def.Owner)
					}
				}
			}
		})
	}
}

// The producer's credentials, as an attacker holding them would use them:
// every read of the log, every reach into another role's replies or
// buckets, every destructive JetStream call is refused by the server.
func TestProducerCanNeitherReadNorDestroy(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	for _, r := range []access.Role{access.Producer, access.Bridge} {
		t.Run(string(r), func(t *testing.T) {
			nc := heraldtest.DialAs(t, srv.ClientURL(), srv.CredsDir, r)
			reply := access.InboxPrefix(r) + ".test"
			var publishes []string
			for _, leg := range []string{"events.otp_dlt_dispatch", "events.otp_dlt_fallback"} {
				publishes = append(publishes,
					// nats.go's ordered consumer with one filter, and with several
					"$JS.API.CONSUMER.CREATE.EVENTS.spy."+leg, "$JS.API.CONSUMER.CREATE.EVENTS.spy",
					// a durable's name: another role's consumer, and its messages
					"$JS.API.CONSUMER.CREATE.EVENTS.provider-adapter."+leg,
					"$JS.API.CONSUMER.MSG.NEXT.EVENTS.provider-adapter",
					// direct get by subject, get by sequence
					"$JS.API.DIRECT.GET.EVENTS."+leg)
			}
			publishes = append(publishes, "$JS.API.DIRECT.GET.EVENTS", "$JS.API.STREAM.MSG.GET.EVENTS",
				"$JS.API.STREAM.INFO.EVENTS", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST",
				"$JS.API.CONSUMER.DURABLE.CREATE.EVENTS.spy")
			for _, s := range streamNames(t) {
				publishes = append(publishes, "$JS.API.STREAM.DELETE."+s, "$JS.API.STREAM.PURGE."+s,
					"$JS.API.STREAM.UPDATE."+s, "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.MSG.DELETE."+s)
				if b, ok := strings.CutPrefix(s, "KV_"); ok {
					publishes = append(publishes, "$KV."+b+".k", "$JS.API.DIRECT.GET."+s+".$KV."+b+".k")
				}
			}
			for _, subj := range publishes {
				if err := nc.PublishRequest(subj, reply, []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
				if !nc.Refused(t, subj) {
					t.Errorf("%s may publish %s", r, subj)
				}
			}
			// Subscriptions: the log's subjects and the other roles' replies.
			subs := []string{"events.otp_dlt_dispatch", "events.>", ">", "_INBOX.>"}
			for _, other := range access.Roles() {
				if other != r {
					subs = append(subs, access.InboxPrefix(other)+".>")
				}
			}
			for _, subj := range subs {
				if _, err := nc.SubscribeSync(subj); err != nil {
					t.Fatal(err)
				}
				if !nc.Refused(t, subj) {
					t.Errorf("%s may subscribe to %s", r, subj)
				}
			}
		})
	}
}

// No role but operator-admin may change a stream, and no role at all may
// delete one or purge anything but the DLQ.
func TestNoServiceRoleMayDeleteOrPurgeAStreamOrBucket(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	names := streamNames(t)
	for _, r := range access.Roles() {
		t.Run(string(r), func(t *testing.T) {
			nc := heraldtest.DialAs(t, srv.ClientURL(), srv.CredsDir, r)
			for _, s := range names {
				verbs := []string{"STREAM.DELETE", "STREAM.PURGE", "STREAM.MSG.DELETE"}
				if r != access.OperatorAdmin {
					verbs = append(verbs, "STREAM.UPDATE", "STREAM.CREATE")
				}
				for _, v := range verbs {
					if r == access.OperatorAdmin && s == streams.DLQ && v != "STREAM.DELETE" {
						continue // dlq purge: the one destructive call, on dead letters only
					}
					subj := fmt.Sprintf("$JS.API.%s.%s", v, s)
					if err := nc.PublishRequest(subj, access.InboxPrefix(r)+".t", []byte(`{}`)); err != nil {
						t.Fatal(err)
					}
					if !nc.Refused(t, subj) {
						t.Errorf("%s may %s %s", r, v, s)
					}
				}
			}
		})
	}
	// Nor delete a durable consumer, its own included.
	for _, r := range access.Roles() {
		nc := heraldtest.DialAs(t, srv.ClientURL(), srv.CredsDir, r)
		for _, d := range durables() {
			subj := "$JS.API.CONSUMER.DELETE." + d
			if err := nc.PublishRequest(subj, access.InboxPrefix(r)+".t", nil); err != nil {
				t.Fatal(err)
			}
			if !nc.Refused(t, subj) {
				t.Errorf("%s may delete the durable %s", r, d)
			}
		}
	}
	// And everything is still there.
	js := srv.As(t, access.OperatorRead).JS
	for _, s := range names {
		if _, err := js.Stream(context.Background(), s); err != nil {
			t.Errorf("stream %s: %v", s, err)
		}
	}
}

// operator-admin purges dead letters; the server answers it (a positive
// control for the refusals above).
func TestOperatorAdminMayPurgeTheDLQ(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	nc := heraldtest.DialAs(t, srv.ClientURL(), srv.CredsDir, access.OperatorAdmin)
	msg, err := nc.Request("$JS.API.STREAM.PURGE.DLQ", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(msg.Data), `"success":true`) {
		t.Errorf("purge DLQ: %s", msg.Data)
	}
}

func TestCredentialsAreKeptAndFollowTheTable(t *testing.T) {
	dir := t.TempDir()
	table, err := access.Table(heraldtest.Catalog(t))
	if err != nil {
		t.Fatal(err)
	}
	first, err := access.Ensure(dir, table)
	if err != nil {
		t.Fatal(err)
	}
	again, err := access.Ensure(dir, table)
	if err != nil {
		t.Fatal(err)
	}
	if again.OperatorJWT != first.OperatorJWT || again.Account != first.Account {
		t.Error("credentials regenerated on a second start")
	}
	for _, r := range access.Roles() {
		got, err := access.RoleOfCreds(first.CredsPath(r))
		if err != nil || got != r {
			t.Errorf("%s.creds is for %q (%v)", r, got, err)
		}
	}
}

func TestRevokedCredentialsAreRefusedAndTheNewOnesWork(t *testing.T) {
	dir := t.TempDir()
	table, err := access.Table(heraldtest.Catalog(t))
	if err != nil {
		t.Fatal(err)
	}
	before, err := access.Ensure(dir, table)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(before.CredsPath(access.Producer))
	if err != nil {
		t.Fatal(err)
	}
	oldFile := filepath.Join(t.TempDir(), "old.creds")
	if err := os.WriteFile(oldFile, old, 0o600); err != nil {
		t.Fatal(err)
	}
	after, err := access.Revoke(dir, access.Producer, table)
	if err != nil {
		t.Fatal(err)
	}
	if after.Account != before.Account {
		t.Fatal("revocation changed the account: its streams would be out of reach")
	}
	srv := heraldtest.Server(t, func(c *bus.ServerConfig) { c.Auth = after })
	if nc, err := nats.Connect(srv.ClientURL(), nats.UserCredentials(oldFile)); err == nil {
		nc.Close()
		t.Error("revoked credentials connected")
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.UserCredentials(after.CredsPath(access.Producer)))
	if err != nil {
		t.Fatalf("new credentials: %v", err)
	}
	nc.Close()
	// Other roles are untouched.
	nc, err = nats.Connect(srv.ClientURL(), nats.UserCredentials(after.CredsPath(access.Dispatcher)))
	if err != nil {
		t.Fatalf("dispatcher after the producer's revocation: %v", err)
	}
	nc.Close()
}

// durables are every role's durable consumers, as <stream>.<name>.
func durables() []string {
	var out []string
	for _, g := range access.Grants() {
		for _, d := range g.Durables {
			out = append(out, d.Stream+"."+d.Name)
		}
	}
	return out
}

// nats.inProcess: the services' in-process connections carry their roles'
// credentials too (the server checks them as it does over TCP).
func TestInProcessConnectionsAuthenticateWithTheirRoles(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets(app.Dispatcher), apptest.WithConfig("nats:\n  inProcess: true\n"))
	r := a.Do(t, "POST", "/v1/events", `{"type":"integration_call_completed","source":"billing",
	 "data":{"integration":"stripe","operation":"charges.create","statusCode":200,"latencyMs":8}}`)
	if r.Status != 202 {
		t.Fatalf("POST /v1/events in-process: %d %s", r.Status, r.Body)
	}
	if got := heraldtest.Events(t, a.Bus, streams.Events, "events.integration_call_completed"); len(got) != 1 {
		t.Errorf("%d events stored", len(got))
	}
}

// A role that reads with ordered consumers names them freely, but never
// another role's durable: it can neither take that durable's messages nor
// change its filter.
func TestReadersCannotTakeOverAnotherRolesDurable(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	grants := access.Grants()
	for _, r := range access.Roles() {
		if len(grants[r].Reads) == 0 {
			continue
		}
		t.Run(string(r), func(t *testing.T) {
			nc := heraldtest.DialAs(t, srv.ClientURL(), srv.CredsDir, r)
			for owner, g := range grants {
				if owner == r {
					continue
				}
				for _, d := range g.Durables {
					for _, subj := range []string{
						"$JS.API.CONSUMER.CREATE." + d.Stream + "." + d.Name,
						"$JS.API.CONSUMER.CREATE." + d.Stream + "." + d.Name + ".>",
						"$JS.API.CONSUMER.CREATE." + d.Stream + "." + d.Name + "." + d.Filter,
						"$JS.API.CONSUMER.MSG.NEXT." + d.Stream + "." + d.Name,
						"$JS.ACK." + d.Stream + "." + d.Name + ".1.1.1.1.1.1",
					} {
						if err := nc.PublishRequest(subj, access.InboxPrefix(r)+".t", []byte(`{}`)); err != nil {
							t.Fatal(err)
						}
						if !nc.Refused(t, subj) {
							t.Errorf("%s may publish %s (%s's durable)", r, subj, owner)
						}
					}
				}
			}
		})
	}
}
