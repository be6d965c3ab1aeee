package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/heraldhq/herald/pkg/event"
)

// Access is who may call a route. Every route declares one; the zero value
// declares nothing and NewServer refuses it.
type Access int

const (
	accessUndeclared Access = iota
	// Public routes read nothing secret: health, metrics, the catalog, the
	// delivery policy.
	Public
	// Producer routes need a producer key (Authorization: Bearer); the
	// handler checks the key's apps and types with AllowApp and AllowType.
	Producer
	// Operator routes need an operator key: they change state or read
	// incidents and subscriptions.
	Operator
	// Signed routes are called by a third party that signs its requests
	// (provider webhooks, Slack): the handler verifies that signature and
	// refuses the request when no secret is configured.
	Signed
)

func (a Access) String() string {
	switch a {
	case Public:
		return "public"
	case Producer:
		return "producer"
	case Operator:
		return "operator"
	case Signed:
		return "signed"
	}
	return "undeclared"
}

// Caller is who sent a request to a Producer or Operator route.
type Caller struct {
	Name string
	Role Role
	// open: no key is configured (loopback only), every scope is allowed.
	open   bool
	digest []byte
	apps   map[string]bool
	types  map[event.Type]bool
}

// MayApp reports whether the caller may send and verify OTPs for app.
func (c *Caller) MayApp(app string) bool {
	return c != nil && (c.open || c.Role == RoleProducer && c.apps[app])
}

// MayPublish reports whether the caller may publish events of type t.
func (c *Caller) MayPublish(t event.Type) bool {
	return c != nil && (c.open || c.Role == RoleProducer && c.types[t])
}

type callerKey struct{}

// CallerFrom returns the request's caller; nil on Public and Signed routes.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// AllowApp answers a 403 unless the request's caller may act for app.
func AllowApp(ctx context.Context, app string) error {
	c := CallerFrom(ctx)
	if c.MayApp(app) {
		return nil
	}
	return Errorf(http.StatusForbidden, "forbidden", "key %q may not send or verify OTPs for app %q", callerName(c), app)
}

// AllowType answers a 403 unless the request's caller may publish t.
func AllowType(ctx context.Context, t event.Type) error {
	c := CallerFrom(ctx)
	if c.MayPublish(t) {
		return nil
	}
	return Errorf(http.StatusForbidden, "forbidden", "key %q may not publish %s events", callerName(c), t)
}

func callerName(c *Caller) string {
	if c == nil {
		return "none"
	}
	return c.Name
}

// authorize checks the request against the route's access: it returns the
// request to serve (with its caller) or the error to answer.
func (k *Keyring) authorize(r *http.Request, a Access) (*http.Request, error) {
	switch a {
	case Public, Signed:
		return r, nil
	case Producer, Operator:
	default:
		return nil, Errorf(http.StatusForbidden, "forbidden", "this route declares no access and is refused")
	}
	if k.Len() == 0 {
		// No key configured: loopback only (LoadKeyring refuses anything else).
		anonymous := &Caller{Name: "anonymous", open: true}
		return r.WithContext(context.WithValue(r.Context(), callerKey{}, anonymous)), nil
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if token = strings.TrimSpace(token); !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, unauthorized("missing_credentials", "send an API key as Authorization: Bearer <key>")
	}
	c := k.find(token)
	if c == nil {
		return nil, unauthorized("invalid_credentials", "the API key is not valid")
	}
	want := RoleProducer
	if a == Operator {
		want = RoleOperator
	}
	if c.Role != want {
		return nil, Errorf(http.StatusForbidden, "forbidden", "key %q has the %s role; this route needs the %s role", c.Name, c.Role, want)
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), nil
}

// unauthorized is a 401; the handler adds WWW-Authenticate (RFC 6750).
func unauthorized(code, detail string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: code, Detail: detail}
}
