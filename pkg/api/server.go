package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is a readiness check: nil when the component is ready.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Server is the HTTP server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	srv    *http.Server
	ln     net.Listener
	checks []Check
	keys   *Keyring
	access map[string]Access // by route pattern
}

// NewServer builds the server with the routes of every service, health,
// readiness and metrics; Start listens. Every route must declare its
// Access; keys are the credentials Producer and Operator routes accept
// (none: every route is open, which LoadKeyring allows on loopback only).
func NewServer(cfg Config, keys *Keyring, log *slog.Logger, reg *prometheus.Registry, routes []Route, checks []Check) (*Server, error) {
	if keys == nil {
		keys = &Keyring{}
	}
	if keys.Len() == 0 && !IsLoopback(cfg.Addr) {
		// LoadKeyring refuses this configuration; refused here as well so
		// that no caller can build an open server off loopback.
		return nil, fmt.Errorf("http: %s is not a loopback address and no key is configured", cfg.Addr)
	}
	s := &Server{cfg: cfg, log: log.With("component", "http"), mux: http.NewServeMux(), checks: checks, keys: keys,
		access: map[string]Access{"GET /healthz": Public, "GET /readyz": Public, "GET /metrics": Public, "GET " + OpenAPIPath: Public}}
	slices.SortFunc(s.checks, func(a, b Check) int { return strings.Compare(a.Name, b.Name) })
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	for _, r := range routes {
		if r.Access <= accessUndeclared || r.Access > Signed {
			return nil, fmt.Errorf("route %q declares no access (public, producer, operator or signed); refused", r.Pattern)
		}
		if err := register(s.mux, r); err != nil {
			return nil, err
		}
		s.access[r.Pattern] = r.Access
	}
	doc, err := openAPIDocument(s.access)
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET "+OpenAPIPath, serveOpenAPI(doc))
	f := promauto.With(reg)
	requests := f.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_http_requests_total", Help: "HTTP requests by method, route (the path pattern) and status code.",
	}, []string{"method", "route", "code"})
	latency := f.NewHistogramVec(prometheus.HistogramOpts{
		Name: "herald_http_request_duration_seconds", Help: "HTTP request latency by method, route (the path pattern) and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"method", "route", "code"})
	s.srv = &http.Server{
		Handler:           s.handler(requests, latency),
		ReadTimeout:       cfg.ReadTimeout.D(),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      cfg.WriteTimeout.D(),
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

func register(mux *http.ServeMux, r Route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("route %q: %v", r.Pattern, p)
		}
	}()
	mux.Handle(r.Pattern, r.Handler)
	return nil
}

// Start listens on the configured address.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "error", err)
		}
	}()
	s.log.Info("http listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Stop stops accepting requests and waits for those in flight.
func (s *Server) Stop(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	results := map[string]string{}
	ok := true
	for _, c := range s.checks {
		if err := c.Func(ctx); err != nil {
			results[c.Name] = err.Error()
			ok = false
		} else {
			results[c.Name] = "ok"
		}
	}
	status, word := http.StatusOK, "ready"
	if !ok {
		status, word = http.StatusServiceUnavailable, "not ready"
	}
	WriteJSON(w, status, map[string]any{"status": word, "checks": results})
}

// handler wraps the mux: JSON 404/405, panic recovery, metrics.
func (s *Server) handler(requests *prometheus.CounterVec, latency *prometheus.HistogramVec) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, method := time.Now(), methodLabel(r.Method) // (r is replaced below, nil on a refusal)
		h, pattern := s.mux.Handler(r)
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK, path: r.URL.EscapedPath()}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panicked", "route", pattern, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rw.wrote {
					WriteError(rw, errors.New("panic"))
				}
			}
			route, code := routeLabel(pattern), strconv.Itoa(rw.status)
			requests.WithLabelValues(method, route, code).Inc()
			latency.WithLabelValues(method, route, code).Observe(time.Since(start).Seconds())
		}()
		if pattern == "" {
			// The mux answers 404 or 405 in plain text; answer the same status in JSON.
			probe := &statusWriter{ResponseWriter: discard{w.Header()}, status: http.StatusOK}
			h.ServeHTTP(probe, r)
			if probe.status == http.StatusMethodNotAllowed {
				WriteError(rw, Errorf(http.StatusMethodNotAllowed, "method_not_allowed",
					"%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, w.Header().Get("Allow")))
				return
			}
			WriteError(rw, Errorf(http.StatusNotFound, "not_found", "no route for %s %s", r.Method, r.URL.Path))
			return
		}
		r, err := s.keys.authorize(r, s.access[pattern])
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
				challenge := `Bearer realm="herald"`
				if e.Code == "invalid_credentials" {
					challenge += `, error="invalid_token"`
				}
				rw.Header().Set("WWW-Authenticate", challenge)
			}
			WriteError(rw, err)
			return
		}
		s.mux.ServeHTTP(rw, r) // (not h: the mux sets the request's path values)
	})
}

// methodLabel bounds the method label: a client chooses the method it
// sends, so anything but the standard ones is "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// routeLabel is a route pattern's path ("GET /v1/incidents/{id}" gives
// "/v1/incidents/{id}"; the method has its own label), "unmatched" for none.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	path   string // the request's path: an error's RFC 9457 instance
}

// instance is the request's path (never its query, which may carry a
// webhook's token): WriteError makes it the problem's instance.
func (w *statusWriter) instance() string { return w.path }

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// discard is a ResponseWriter that keeps headers and drops the body.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
