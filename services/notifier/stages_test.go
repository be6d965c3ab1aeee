package notifier_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/slack"
	"github.com/heraldhq/herald/services/notifier"
)

// Unit tests of the delivery pipeline's stages (stages.go), each alone, on
// a notifier that is built and not started: its state is fed by hand.

const stageDest = "C0OPS"

// unstarted builds a notifier that is not started, with its Web API on s
// (nil: no bot token).
func unstarted(t *testing.T, b *bus.Bus, s *heraldtest.Slack, hook func(string) bool) *notifier.Notifier {
	t.Helper()
	cfg := notifier.DefaultConfig()
	if s != nil {
		cfg = webAPIConfig(s, stageDest)
	}
	// Backoffs long enough to be seen pending.
	cfg.Retry.Initial, cfg.Retry.Max = cfgDuration(time.Minute), cfgDuration(time.Hour)
	n, err := notifier.New(cfg, notifier.Deps{Bus: b, Log: heraldtest.Logger(t), Registry: prometheus.NewRegistry(),
		CrashAfterSend: hook})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Events as the notifier reads them.

func opened(id string) *event.Event {
	return event.New("incident", event.IncidentOpened{IncidentID: id, Rule: "otp-failure-rate", Kind: "ratio", Severity: "P2",
		Group: map[string]string{"app": "shop"}, OpenedAt: onset, Summary: "shop: 23% of OTP sends failing",
		Evidence: evidence(23, 100)}, event.WithSubject("incidents.incident_opened."+id+".0"))
}

func escalated(id string, ord int) *event.Event {
	return event.New("incident", event.IncidentEscalated{IncidentID: id, Rule: "otp-failure-rate",
		Group: map[string]string{"app": "shop"}, From: "P2", To: "P1", At: onset.Add(time.Minute), Evidence: evidence(61, 100)},
		event.WithSubject(fmt.Sprintf("incidents.incident_escalated.%s.%d", id, ord)))
}

func routed(id, transition, dest string) *event.Event {
	return event.New("notifier", event.NotificationRouted{IncidentID: id, Transition: transition, Destinations: []string{dest}})
}

func rootPosted(id, dest, mode string) *event.Event {
	return event.New("notifier", event.SlackMessagePosted{IncidentID: id, Transition: "opened", Channel: dest,
		TS: "1700000000.000100", Mode: mode, Destination: dest, Action: notifier.StepRoot})
}

func TestPipelineComposition(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t)
	all := []string{"dedupStage", "paceStage", "doubtStage", "sendStage", "retryStage", "recordStage", "repairStage", "settleStage"}
	if got := unstarted(t, b, s, nil).Pipeline(stageDest).Names(); !slices.Equal(got, all) {
		t.Errorf("web API pipeline: %v, want %v", got, all)
	}
	// Only Web API posts have a crash window to close.
	noDoubt := slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == "doubtStage" })
	if got := unstarted(t, b, nil, nil).Pipeline("console").Names(); !slices.Equal(got, noDoubt) {
		t.Errorf("console pipeline: %v, want %v", got, noDoubt)
	}
}

func TestDedupStagePicksWhatTheLedgerSaysIsOwed(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t)
	for _, tc := range []struct {
		name, dest string
		folded     []*event.Event
		want       notifier.Verdict
		kind, key  string
	}{
		{"routed, not posted: the root", stageDest, []*event.Event{opened("inc-stage001"), routed("inc-stage001", "opened", stageDest)},
			notifier.Proceed, notifier.StepRoot, "opened"},
		{"root recorded: nothing", stageDest,
			[]*event.Event{opened("inc-stage001"), routed("inc-stage001", "opened", stageDest), rootPosted("inc-stage001", stageDest, notifier.ModeWebAPI)},
			notifier.Idle, "", ""},
		{"escalated: an edit first", stageDest,
			[]*event.Event{opened("inc-stage001"), routed("inc-stage001", "opened", stageDest), rootPosted("inc-stage001", stageDest, notifier.ModeWebAPI),
				escalated("inc-stage001", 1), routed("inc-stage001", "escalated-1", stageDest)},
			notifier.Proceed, notifier.StepUpdate, "escalated-1"},
		{"a sink that cannot edit: a reply", "console",
			[]*event.Event{opened("inc-stage001"), routed("inc-stage001", "opened", "console"), rootPosted("inc-stage001", "console", notifier.ModeConsole),
				escalated("inc-stage001", 1), routed("inc-stage001", "escalated-1", "console")},
			notifier.Proceed, notifier.StepReply, "escalated-1"},
		{"a transition not routed here: nothing", stageDest,
			[]*event.Event{opened("inc-stage001"), routed("inc-stage001", "opened", stageDest), rootPosted("inc-stage001", stageDest, notifier.ModeWebAPI),
				escalated("inc-stage001", 1)},
			notifier.Idle, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := unstarted(t, b, s, nil)
			n.Fold(tc.folded...)
			d := n.NewDelivery("inc-stage001", tc.dest)
			if got := n.Pipeline(tc.dest).Stage("dedupStage")(context.Background(), d); got != tc.want {
				t.Fatalf("verdict %v, want %v", got, tc.want)
			}
			if tc.want == notifier.Idle {
				return
			}
			if st := d.Step(); st.Kind != tc.kind || st.Key != tc.key {
				t.Errorf("step %s %s, want %s %s", st.Kind, st.Key, tc.kind, tc.key)
			}
		})
	}
}

// ready feeds n the incident's events up to what the lane is owed and
// returns a delivery of its next step, as dedupStage picks it.
func ready(t *testing.T, n *notifier.Notifier, dest, id string, events ...*event.Event) *notifier.Delivery {
	t.Helper()
	n.Fold(events...)
	d := n.NewDelivery(id, dest)
	if v := n.Pipeline(dest).Stage("dedupStage")(context.Background(), d); v != notifier.Proceed {
		t.Fatalf("nothing owed to %s", id)
	}
	return d
}

// rooted: the root is posted and an escalation routed: an edit and a
// reply are owed.
func rooted(id string) []*event.Event {
	return []*event.Event{opened(id), routed(id, "opened", stageDest), rootPosted(id, stageDest, notifier.ModeWebAPI),
		escalated(id, 1), routed(id, "escalated-1", stageDest)}
}

// editOwed: as rooted, with the reply recorded: only the edit is owed.
func editOwed(id string) []*event.Event {
	return append(rooted(id), event.New("notifier", event.SlackMessagePosted{IncidentID: id, Transition: "escalated-1",
		Channel: stageDest, TS: "1700000000.000300", Mode: notifier.ModeWebAPI, Destination: stageDest, Action: notifier.StepReply}))
}

// spendEdits spends the workspace's edit budget (its burst, 10 by default).
func spendEdits(t *testing.T, n *notifier.Notifier, p *notifier.Pipeline, id string) {
	t.Helper()
	if v := p.Stage("paceStage")(context.Background(), ready(t, n, stageDest, id, editOwed(id)...)); v != notifier.Proceed {
		t.Fatalf("first edit: %v, want it to go (the bucket's burst)", v)
	}
	for range 20 {
		p.Stage("paceStage")(context.Background(), ready(t, n, stageDest, id))
	}
}

func TestPaceStageSetsAnEditWithoutATokenAside(t *testing.T) {
	n := unstarted(t, heraldtest.JetStream(t), heraldtest.StartSlack(t), nil)
	p := n.Pipeline(stageDest)
	spendEdits(t, n, p, "inc-stage001")
	d := ready(t, n, stageDest, "inc-stage002", editOwed("inc-stage002")...)
	if v := p.Stage("paceStage")(context.Background(), d); v != notifier.KeepTurn {
		t.Fatalf("edit over budget: %v, want KeepTurn", v)
	}
	if !d.NotBefore().After(time.Now()) {
		t.Errorf("set aside until %v: not in the future", d.NotBefore())
	}
}

func TestPaceStageLetsTheReplyGoWhileTheEditWaits(t *testing.T) {
	n := unstarted(t, heraldtest.JetStream(t), heraldtest.StartSlack(t), nil)
	p := n.Pipeline(stageDest)
	spendEdits(t, n, p, "inc-stage001")
	d := ready(t, n, stageDest, "inc-stage002", rooted("inc-stage002")...)
	if d.Step().Kind != notifier.StepUpdate {
		t.Fatalf("owed %s first, want an update", d.Step().Kind)
	}
	if v := p.Stage("paceStage")(context.Background(), d); v != notifier.Proceed || d.Step().Kind != notifier.StepReply || d.Step().Key != "escalated-1" {
		t.Errorf("got %v %s %s, want Proceed reply escalated-1", v, d.Step().Kind, d.Step().Key)
	}
}

func TestPaceStageCoalescesWhatArrivedWhileAPostWaited(t *testing.T) {
	n := unstarted(t, heraldtest.JetStream(t), heraldtest.StartSlack(t), nil)
	d := ready(t, n, stageDest, "inc-stage001", opened("inc-stage001"), routed("inc-stage001", "opened", stageDest))
	n.Fold(escalated("inc-stage001", 1), routed("inc-stage001", "escalated-1", stageDest))
	if v := n.Pipeline(stageDest).Stage("paceStage")(context.Background(), d); v != notifier.Proceed {
		t.Fatalf("verdict %v", v)
	}
	if st := d.Step(); st.Kind != notifier.StepRoot || st.Snap.Transition != "escalated-1" {
		t.Errorf("root shows %s, want escalated-1 (coalesced)", st.Snap.Transition)
	}
}

func TestPaceStageStopsWithTheNotifier(t *testing.T) {
	n := unstarted(t, heraldtest.JetStream(t), heraldtest.StartSlack(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := ready(t, n, stageDest, "inc-stage001", opened("inc-stage001"), routed("inc-stage001", "opened", stageDest))
	if v := n.Pipeline(stageDest).Stage("paceStage")(ctx, d); v != notifier.Halt {
		t.Errorf("a post waiting for its bucket: %v, want Halt", v)
	}
}

func TestDoubtStage(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t)
	s.AddChannel(stageDest, "ops")
	ctx := context.Background()
	n := unstarted(t, b, s, nil)
	p := n.Pipeline(stageDest)

	d := ready(t, n, stageDest, "inc-stage001", opened("inc-stage001"), routed("inc-stage001", "opened", stageDest))
	if v := p.Stage("doubtStage")(ctx, d); v != notifier.Proceed || d.Answered() {
		t.Fatalf("first attempt: %v answered=%v, want Proceed, to be sent", v, d.Answered())
	}
	id, unchecked, ok := d.Attempt()
	if !ok || unchecked || id != "inc-stage001.opened."+stageDest+".root" {
		t.Fatalf("attempt %q unchecked=%v ok=%v", id, unchecked, ok)
	}
	if got := ledger[event.SlackPostAttempted](t, b); len(got) != 1 || got[0].Step != id {
		t.Fatalf("slack_post_attempted: %+v", got)
	}
	// Sent, and its answer lost to a crash: the step is in doubt.
	if v := p.Stage("sendStage")(ctx, d); v != notifier.Proceed {
		t.Fatalf("send: %v", v)
	}
	posted, _ := d.Answer()

	again := ready(t, n, stageDest, "inc-stage001")
	if v := p.Stage("doubtStage")(ctx, again); v != notifier.Proceed || !again.Answered() {
		t.Fatalf("in doubt: %v answered=%v, want the look-up to answer", v, again.Answered())
	}
	if sent, err := again.Answer(); err != nil || !sent.Adopted || sent.TS != posted.TS {
		t.Errorf("in doubt: %+v %v, want the message %s adopted", sent, err, posted.TS)
	}
	if got := ledger[event.SlackPostAttempted](t, b); len(got) != 1 {
		t.Errorf("%d attempts recorded, want 1", len(got))
	}

	// An edit has no attempt.
	edit := ready(t, n, stageDest, "inc-stage002", opened("inc-stage002"), routed("inc-stage002", "opened", stageDest),
		rootPosted("inc-stage002", stageDest, notifier.ModeWebAPI), escalated("inc-stage002", 1), routed("inc-stage002", "escalated-1", stageDest))
	if v := p.Stage("doubtStage")(ctx, edit); v != notifier.Proceed {
		t.Fatalf("edit: %v", v)
	}
	if _, _, ok := edit.Attempt(); ok {
		t.Error("an edit was recorded as attempted")
	}
}

func TestSendStage(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t)
	s.AddChannel(stageDest, "ops")
	ctx := context.Background()

	t.Run("sends, and a refusal is not in doubt", func(t *testing.T) {
		n := unstarted(t, b, s, nil)
		send := n.Pipeline(stageDest).Stage("sendStage")
		d := ready(t, n, stageDest, "inc-stage001", opened("inc-stage001"), routed("inc-stage001", "opened", stageDest))
		if v := send(ctx, d); v != notifier.Proceed {
			t.Fatalf("verdict %v", v)
		}
		if sent, err := d.Answer(); err != nil || sent.TS == "" || len(s.Messages(stageDest)) != 1 {
			t.Fatalf("answer %+v %v, %d messages", sent, err, len(s.Messages(stageDest)))
		}

		s.FailWith(stageDest, "channel_not_found")
		refused := ready(t, n, stageDest, "inc-stage002", opened("inc-stage002"), routed("inc-stage002", "opened", stageDest))
		refused.SetAttempt(time.Now())
		send(ctx, refused)
		id, _, _ := refused.Attempt()
		if _, err := refused.Answer(); slack.KindOf(err) != slack.Permanent || !refused.Refused(id) {
			t.Errorf("answer %v refused=%v, want a permanent refusal, remembered", err, refused.Refused(id))
		}
	})

	t.Run("a step answered by the look-up is not sent", func(t *testing.T) {
		n := unstarted(t, b, s, nil)
		d := ready(t, n, stageDest, "inc-stage003", opened("inc-stage003"), routed("inc-stage003", "opened", stageDest))
		d.SetAnswer(notifier.Sent{Channel: stageDest, TS: "1.2", Adopted: true}, nil)
		before := len(s.Calls())
		if v := n.Pipeline(stageDest).Stage("sendStage")(ctx, d); v != notifier.Proceed || len(s.Calls()) != before {
			t.Errorf("verdict %v, %d calls, want Proceed and none", v, len(s.Calls())-before)
		}
	})

	t.Run("the crash hook stops right after the send", func(t *testing.T) {
		var hooked []string
		n := unstarted(t, b, s, func(step string) bool { hooked = append(hooked, step); return true })
		d := ready(t, n, stageDest, "inc-stage004", opened("inc-stage004"), routed("inc-stage004", "opened", stageDest))
		if v := n.Pipeline(stageDest).Stage("sendStage")(ctx, d); v != notifier.Halt {
			t.Errorf("verdict %v, want Halt", v)
		}
		if !slices.Equal(hooked, []string{"inc-stage004.opened." + stageDest + ".root"}) {
			t.Errorf("hook called with %v", hooked)
		}
	})
}

func TestRetryStageClassifiesTheAnswer(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t)
	limited := func(method string) error {
		return &slack.Error{Method: method, Code: "ratelimited", Status: 429, Kind: slack.RateLimited, RetryAfter: time.Hour}
	}
	soon := time.Now().Add(30 * time.Minute)
	for _, tc := range []struct {
		name string
		err  error
		want notifier.Verdict
		// check what the stage held back, on the pipeline and the delivery
		check func(*notifier.Notifier, *notifier.Pipeline, *notifier.Delivery) error
	}{
		{"ok: recorded next", nil, notifier.Proceed, nil},
		{"permanent: recorded next", &slack.Error{Method: "chat.postMessage", Code: "channel_not_found", Kind: slack.Permanent},
			notifier.Proceed, nil},
		{"429 on a post: the destination's posts pause", limited("chat.postMessage"), notifier.KeepTurn,
			func(n *notifier.Notifier, p *notifier.Pipeline, _ *notifier.Delivery) error {
				if !p.PostsPausedUntil().After(soon) || !n.PausedUntil("chat.update").IsZero() {
					return fmt.Errorf("posts paused until %v, edits until %v", p.PostsPausedUntil(), n.PausedUntil("chat.update"))
				}
				return nil
			}},
		{"429 on an edit: the workspace's edits pause", limited("chat.update"), notifier.KeepTurn,
			func(n *notifier.Notifier, p *notifier.Pipeline, _ *notifier.Delivery) error {
				if !n.PausedUntil("chat.update").After(soon) || !p.PostsPausedUntil().IsZero() {
					return fmt.Errorf("posts paused until %v, edits until %v", p.PostsPausedUntil(), n.PausedUntil("chat.update"))
				}
				return nil
			}},
		{"credentials: the workspace waits", &slack.Error{Method: "chat.postMessage", Code: "invalid_auth", Kind: slack.Credentials},
			notifier.Requeue, func(n *notifier.Notifier, _ *notifier.Pipeline, d *notifier.Delivery) error {
				if !n.AuthUntil().After(time.Now()) || !d.NotBefore().IsZero() {
					return fmt.Errorf("gate until %v, lane not before %v", n.AuthUntil(), d.NotBefore())
				}
				return nil
			}},
		{"transient: the lane backs off", &slack.Error{Method: "chat.postMessage", Code: "http_500", Status: 500, Kind: slack.Transient},
			notifier.Requeue, func(n *notifier.Notifier, _ *notifier.Pipeline, d *notifier.Delivery) error {
				if !d.NotBefore().After(time.Now()) || !n.AuthUntil().IsZero() {
					return fmt.Errorf("lane not before %v, gate until %v", d.NotBefore(), n.AuthUntil())
				}
				return nil
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := unstarted(t, b, s, nil)
			p := n.Pipeline(stageDest)
			d := ready(t, n, stageDest, "inc-stage001", opened("inc-stage001"), routed("inc-stage001", "opened", stageDest))
			d.SetAnswer(notifier.Sent{}, tc.err)
			if got := p.Stage("retryStage")(context.Background(), d); got != tc.want {
				t.Fatalf("verdict %v, want %v", got, tc.want)
			}
			if tc.check != nil {
				if err := tc.check(n, p, d); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestRecordStageWritesTheOutcome(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t)
	ctx := context.Background()
	n := unstarted(t, b, s, nil)
	record := n.Pipeline(stageDest).Stage("recordStage")

	d := ready(t, n, stageDest, "inc-stage001", opened("inc-stage001"), routed("inc-stage001", "opened", stageDest))
	d.SetAnswer(notifier.Sent{Channel: stageDest, TS: "1700000000.000200"}, nil)
	if v := record(ctx, d); v != notifier.Proceed {
		t.Fatalf("verdict %v", v)
	}
	if got := ledger[event.SlackMessagePosted](t, b); len(got) != 1 || got[0].TS != "1700000000.000200" || got[0].Action != "root" {
		t.Fatalf("slack_message_posted: %+v", got)
	}
	if l := d.Lane(); !l.Rooted || l.RootTS != "1700000000.000200" {
		t.Errorf("the lane does not know its root: %+v", l)
	}

	f := ready(t, n, stageDest, "inc-stage002", opened("inc-stage002"), routed("inc-stage002", "opened", stageDest))
	f.SetAnswer(notifier.Sent{}, &slack.Error{Method: "chat.postMessage", Code: "is_archived", Kind: slack.Permanent})
	if v := record(ctx, f); v != notifier.Proceed {
		t.Fatalf("verdict %v", v)
	}
	if got := ledger[event.NotificationFailed](t, b); len(got) != 1 || got[0].Error != "is_archived" || got[0].IncidentID != "inc-stage002" {
		t.Fatalf("notification_failed: %+v", got)
	}
	if v := n.Pipeline(stageDest).Stage("dedupStage")(ctx, n.NewDelivery("inc-stage002", stageDest)); v != notifier.Idle {
		t.Errorf("a root failed for good is still owed: %v", v)
	}
}

func TestRepairStageDeletesCopiesOfAStepPostedInDoubt(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t)
	s.AddChannel(stageDest, "ops")
	ctx := context.Background()
	n := unstarted(t, b, s, nil)
	p := n.Pipeline(stageDest)
	since := time.Now()

	// The same step posted twice: the second one is the one recorded.
	first := ready(t, n, stageDest, "inc-stage001", opened("inc-stage001"), routed("inc-stage001", "opened", stageDest))
	p.Stage("sendStage")(ctx, first)
	second := ready(t, n, stageDest, "inc-stage001")
	p.Stage("sendStage")(ctx, second)
	kept, _ := second.Answer()
	if len(s.Messages(stageDest)) != 2 {
		t.Fatalf("%d messages, want 2", len(s.Messages(stageDest)))
	}

	second.SetRepair(since)
	if v := p.Stage("repairStage")(ctx, second); v != notifier.Proceed {
		t.Fatalf("verdict %v", v)
	}
	if m := s.Messages(stageDest); len(m) != 1 || m[0].TS != kept.TS {
		t.Errorf("messages %+v, want only %s", m, kept.TS)
	}
	if got := ledger[event.SlackMessageDeleted](t, b); len(got) != 1 || got[0].Kept != kept.TS {
		t.Errorf("slack_message_deleted: %+v", got)
	}
	if !second.Repair().IsZero() {
		t.Error("repair still pending")
	}

	// Nothing to repair: no call.
	before := len(s.Calls())
	p.Stage("repairStage")(ctx, second)
	if len(s.Calls()) != before {
		t.Errorf("%d calls with nothing to repair", len(s.Calls())-before)
	}
}

func TestSettleStage(t *testing.T) {
	b := heraldtest.JetStream(t)
	s := heraldtest.StartSlack(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		err      error
		authOpen bool
	}{
		{"a success opens the credentials gate", nil, true},
		{"a permanent failure leaves it", &slack.Error{Method: "chat.postMessage", Code: "is_archived", Kind: slack.Permanent}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := unstarted(t, b, s, nil)
			p := n.Pipeline(stageDest)
			// An earlier try of the lane backed off, and the workspace's credentials failed.
			d := ready(t, n, stageDest, "inc-stage001", opened("inc-stage001"), routed("inc-stage001", "opened", stageDest))
			d.SetAnswer(notifier.Sent{}, &slack.Error{Method: "chat.postMessage", Code: "http_500", Kind: slack.Transient})
			p.Stage("retryStage")(ctx, d)
			d.SetAnswer(notifier.Sent{}, &slack.Error{Method: "chat.postMessage", Code: "invalid_auth", Kind: slack.Credentials})
			p.Stage("retryStage")(ctx, d)

			d.SetAnswer(notifier.Sent{Channel: stageDest, TS: "1.1"}, tc.err)
			if v := p.Stage("settleStage")(ctx, d); v != notifier.Requeue {
				t.Fatalf("verdict %v, want Requeue (the lane's next step)", v)
			}
			if !d.NotBefore().IsZero() {
				t.Errorf("the lane still waits until %v", d.NotBefore())
			}
			if open := n.AuthUntil().IsZero(); open != tc.authOpen {
				t.Errorf("gate open %v, want %v", open, tc.authOpen)
			}
		})
	}
}
