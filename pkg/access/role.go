// Package access says who may do what on Herald's NATS: the roles, one table
// of the subjects and JetStream API calls each role may use (derived from the
// event catalog's owners), and the credentials that carry them in NATS's
// decentralized JWT model (operator, account, one user per role), with the
// TLS material a cluster needs. The NATS server enforces the table.
package access

import (
	"fmt"
	"slices"
	"strings"

	"github.com/heraldhq/herald/pkg/event"
)

// Role is one identity on NATS: each Herald service, the producers, and the
// operator's read-only and administrative tools.
type Role string

// The roles. A service's role has the name of its event.Owner.
const (
	Dispatcher      Role = Role(event.OwnerDispatcher)
	ProviderAdapter Role = Role(event.OwnerProviderAdapter)
	Incident        Role = Role(event.OwnerIncident)
	Notifier        Role = Role(event.OwnerNotifier)
	// Producer publishes the producer-owned event types and nothing else.
	Producer Role = Role(event.OwnerProducer)
	// Bridge has the producer's rights, for integrations that relay
	// producers' events into Herald.
	Bridge Role = "bridge"
	// OperatorRead reads the logs (tail, replay, incidents, dlq list/show).
	OperatorRead Role = "operator-read"
	// OperatorAdmin applies the stream definitions and purges dead letters.
	OperatorAdmin Role = "operator-admin"
)

// Roles lists every role, in the order of the table.
func Roles() []Role {
	return []Role{Dispatcher, ProviderAdapter, Incident, Notifier, Bridge, Producer, OperatorRead, OperatorAdmin}
}

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles(), r) {
		names := make([]string, 0, len(Roles()))
		for _, r := range Roles() {
			names = append(names, string(r))
		}
		return "", fmt.Errorf("unknown role %q (roles: %s)", s, strings.Join(names, ", "))
	}
	return r, nil
}

// InboxPrefix is the prefix of the role's reply subjects. Each role has its
// own, and may subscribe only to it: JetStream hands pulled messages, KV
// values and acks to the requester's inbox, and a shared _INBOX.> would let
// any role read what the others pull.
func InboxPrefix(r Role) string { return "_INBOX_" + string(r) }

// CredsFile is the name of the role's credentials file in a credentials
// directory.
func CredsFile(r Role) string { return string(r) + ".creds" }
