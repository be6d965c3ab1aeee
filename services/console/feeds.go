package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/deliveryhealth"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/trace"
	"github.com/heraldhq/herald/streams"
)

// TailEvent is one line of the live tail: the envelope and the data as
// stored (phones masked, codes sealed).
type TailEvent struct {
	Seq       uint64          `json:"seq"`
	Time      string          `json:"time"`
	Type      string          `json:"type"`
	Source    string          `json:"source"`
	RequestID string          `json:"requestId,omitempty"`
	App       string          `json:"app,omitempty"`
	Data      json.RawMessage `json:"data"`
}

// tailFilter is what the tail shows.
type tailFilter struct {
	types          []string
	app, requestID string
	startSeq       uint64
	since          time.Duration
}

func parseTail(r *http.Request) (tailFilter, error) {
	q := r.URL.Query()
	f := tailFilter{app: q.Get("app"), requestID: q.Get("requestId"), since: 10 * time.Minute}
	for _, t := range strings.Split(q.Get("type"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			if strings.ContainsAny(t, ".*> ") {
				return f, api.Errorf(http.StatusBadRequest, "invalid_query", "type %q is not an event type", t)
			}
			f.types = append(f.types, t)
		}
	}
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return f, api.Errorf(http.StatusBadRequest, "invalid_query", "since %q is not a positive duration", v)
		}
		f.since = d
	}
	// A reconnecting EventSource sends the last id it received.
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("after")
	}
	if last != "" {
		n, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			return f, api.Errorf(http.StatusBadRequest, "invalid_query", "event id %q is not a stream sequence", last)
		}
		f.startSeq = n + 1
	}
	return f, nil
}

func (f tailFilter) consumer() jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{}
	for _, t := range f.types {
		cfg.FilterSubjects = append(cfg.FilterSubjects, string(event.LogEvents)+"."+t)
	}
	if f.startSeq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.startSeq
	} else {
		start := time.Now().Add(-f.since)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	return cfg
}

// tail streams EVENTS as server-sent events, filtered by type, app and
// request id, for c.stream at most: the page then reconnects from the last
// id (the HTTP server's write timeout ends any answer).
func (c *Console) tail(w http.ResponseWriter, r *http.Request) {
	f, err := parseTail(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		api.WriteError(w, errors.New("response writer cannot flush"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 1000\n\n")
	flusher.Flush()
	ctx, cancel := context.WithTimeout(r.Context(), c.stream)
	defer cancel()
	var scanned uint64
	err = c.bus.Scan(ctx, streams.Events, bus.ScanOptions{Consumer: f.consumer(), Follow: true, Batch: 256},
		func(m jetstream.Msg, pos bus.Position) error {
			scanned = pos.Seq
			e, ok := f.match(m, pos)
			if !ok {
				return nil
			}
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: event\ndata: %s\n\n", e.Seq, b); err != nil {
				return err
			}
			flusher.Flush()
			return nil
		})
	if err != nil && ctx.Err() == nil {
		c.log.Warn("tail ended", "error", err)
		fmt.Fprintf(w, "event: error\ndata: %q\n\n", err.Error())
	}
	if scanned > 0 {
		// Where the read got to, matched or not: the next answer resumes
		// there rather than showing the same lines again.
		fmt.Fprintf(w, "id: %d\nevent: position\ndata: {}\n\n", scanned)
	}
	flusher.Flush()
}

func (f tailFilter) match(m jetstream.Msg, pos bus.Position) (TailEvent, bool) {
	h := m.Headers()
	e := TailEvent{Seq: pos.Seq, Time: h.Get(event.HeaderTime), Type: h.Get(event.HeaderType), Source: h.Get(event.HeaderSource),
		RequestID: h.Get(event.HeaderRequestID)}
	if f.requestID != "" && e.RequestID != f.requestID {
		return e, false
	}
	var app struct {
		App string `json:"app"`
	}
	if json.Valid(m.Data()) {
		e.Data = m.Data()
		_ = json.Unmarshal(m.Data(), &app)
	} else {
		e.Data, _ = json.Marshal(string(m.Data()))
	}
	e.App = app.App
	return e, f.app == "" || e.App == f.app
}

// trace serves one request's trace (pkg/trace, as herald trace prints it).
func (c *Console) trace(w http.ResponseWriter, r *http.Request) {
	opts := trace.Options{}
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_query", "since %q is not a positive duration", v))
			return
		}
		opts.Since = time.Now().Add(-d)
	}
	tr, err := trace.Read(r.Context(), c.bus, r.PathValue("requestId"), opts)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, tr)
}

// maxDeadLetters bounds one answer: the newest are kept.
const maxDeadLetters = 500

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	var out []bus.DeadLetter
	err := c.bus.Scan(r.Context(), streams.DLQ, bus.ScanOptions{}, func(m jetstream.Msg, pos bus.Position) error {
		d := bus.ReadDeadLetter(pos, m.Headers(), m.Data())
		d.Headers = nil // the list shows what a row needs; herald dlq show has the headers
		if out = append(out, d); len(out) > maxDeadLetters {
			out = out[1:]
		}
		return nil
	})
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"deadLetters": append([]bus.DeadLetter{}, out...)})
}

// health serves the delivery-health projection over ?window (default 1h).
func (c *Console) health(w http.ResponseWriter, r *http.Request) {
	window := time.Hour
	if v := r.URL.Query().Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 24*time.Hour {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_query", "window %q is not a duration between 1m and 24h", v))
			return
		}
		window = d
	}
	to := time.Now().UTC()
	rep, err := deliveryhealth.Read(r.Context(), c.bus, to.Add(-window), to)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, rep)
}
