package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/lease"
)

// Design §7: on a 3-node cluster with an R3 lease bucket, losing the
// bucket's stream leader never gives two holders at once, and the lease is
// held again once the stream has a new leader.
func TestLosingTheLeaseBucketLeaderOfThreeKeepsOneHolder(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := heraldtest.StartCluster(t, 3)
	h := newHolders(t)
	a := start(t, c.Connect(t), h, "a")
	start(t, c.Connect(t), h, "b")
	heraldtest.Eventually(t, 30*time.Second, "a leader", func() bool { return h.leader() != "" })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := a.b.JS.Stream(ctx, "KV_"+lease.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil {
		t.Fatalf("lease bucket has %d replicas, want 3", info.Config.Replicas)
	}
	old := info.Cluster.Leader
	for _, s := range c.Servers {
		if s.Name() == old {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	// The holders' elected callbacks fail the test if two ever lead at once.
	heraldtest.Eventually(t, 30*time.Second, "a new stream leader", func() bool {
		// A request that reached no leader is never answered: ask again.
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		info, err := st.Info(ctx)
		return err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != old
	})
	heraldtest.Eventually(t, 3*lease.DefaultTTL, "the lease held after the fail-over", func() bool {
		return h.leader() != ""
	})
	// It stays held: renewals go to the new stream leader.
	leader := h.leader()
	since := h.electedAt(leader)
	heraldtest.Eventually(t, 3*lease.DefaultTTL, "renewals through two TTLs", func() bool {
		return time.Since(since) > 2*lease.DefaultTTL
	})
	if h.leader() != leader || !h.electedAt(leader).Equal(since) {
		t.Errorf("leadership moved without a failure: %s elected at %s, now %s", leader, since, h.leader())
	}
}
