package provideradapter_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

func testKey(b byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(b)), 32)))
}

// hashKeyID is the key id stored with a code's hash.
func (r *rig) hashKeyID(t *testing.T, requestID string) string {
	t.Helper()
	ctx := context.Background()
	kv, err := r.As(t, access.Dispatcher).JS.KeyValue(ctx, "OTP_CODES")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, requestID)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		HashKeyID *string `json:"hashKeyId"`
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.HashKeyID == nil {
		t.Fatalf("code record %s: %v", e.Value(), err)
	}
	return *rec.HashKeyID
}

func TestCodesSealedAndHashedBeforeAKeyRotationStillDeliverAndVerify(t *testing.T) {
	// Before: single keys, key id "0". Only the dispatcher runs, so the
	// dispatch waits in the stream, sealed with the old key.
	t.Setenv("OTP_SEAL_KEY", testKey('a'))
	t.Setenv("OTP_HASH_KEY", testKey('b'))
	before := startRig(t, "", apptest.WithTargets("dispatcher"))
	resp := before.Do(t, "POST", "/v1/otp/send?mode=async", map[string]string{"app": "bank", "phone": phone()})
	old := requestID(t, resp)
	if d := find[event.OTPDLTDispatch](t, before.events(t, old)); !strings.HasPrefix(d.Sealed, "0.") {
		t.Fatalf("sealed %q, want key id 0", d.Sealed)
	}
	if id := before.hashKeyID(t, old); id != "0" {
		t.Fatalf("hash key id %q, want 0", id)
	}
	before.Stop(t)

	// After: key "2026" is current, key "0" still opens and verifies.
	t.Setenv("OTP_SEAL_KEY", "2026:"+testKey('c')+",0:"+testKey('a'))
	t.Setenv("OTP_HASH_KEY", "2026:"+testKey('d')+",0:"+testKey('b'))
	r := &rig{App: apptest.StartApp(t, apptest.WithConfig(rigConfig(before.f2s, before.tw, "")),
		apptest.WithDataDir(before.DataDir)), f2s: before.f2s, tw: before.tw}
	if c := find[event.OTPDeliveryCompleted](t, r.waitFor(t, old, "otp_delivery_completed")); c.Status != "delivered" {
		t.Fatalf("the dispatch sealed before the rotation: %+v", c)
	}
	reqs := r.f2s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fast2sms got %d requests", len(reqs))
	}
	if v := r.verify(t, old, reqs[0].Code()); v.Status != http.StatusOK {
		t.Errorf("verify of a code hashed before the rotation: %d %s", v.Status, v.Body)
	}

	resp = r.send(t, "bank")
	if resp.Status != http.StatusOK {
		t.Fatalf("send after the rotation: %d %s", resp.Status, resp.Body)
	}
	fresh := requestID(t, resp)
	if d := find[event.OTPDLTDispatch](t, r.events(t, fresh)); !strings.HasPrefix(d.Sealed, "2026.") {
		t.Errorf("sealed %q, want the current key id 2026", d.Sealed)
	}
	if id := r.hashKeyID(t, fresh); id != "2026" {
		t.Errorf("hash key id %q, want 2026", id)
	}
	if v := r.verify(t, fresh, r.f2s.Requests()[1].Code()); v.Status != http.StatusOK {
		t.Errorf("verify after the rotation: %d %s", v.Status, v.Body)
	}
}
