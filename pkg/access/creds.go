package access

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// AccountName is the NATS account every Herald role belongs to.
const AccountName = "HERALD"

// Files in a credentials directory besides the roles' <role>.creds.
const (
	OperatorJWTFile = "operator.jwt"
	// AuthConfFile is the server-side include: operator, system account and
	// the account JWTs preloaded in a MEMORY resolver.
	AuthConfFile = "auth.conf"
)

// Credentials are an operator, its system account, the HERALD account
// (JetStream enabled, no limits) and one user per role, with the table's
// permissions in its JWT, as files in Dir.
type Credentials struct {
	Dir string
	// OperatorJWT is trusted by the servers.
	OperatorJWT string
	// SystemAccount and Account are public keys; AccountJWTs maps each
	// account's public key to its JWT, for the servers' resolver.
	SystemAccount, Account string
	AccountJWTs            map[string]string
}

// Ensure loads the credentials in dir, creating what is missing: the keys
// (operator, accounts, users) are made once and kept; a user's JWT is issued
// again, with the same key, when the table's permissions for its role
// changed (a new event type, say). Files are 0600 in a 0700 directory.
func Ensure(dir string, table map[Role]Permissions) (*Credentials, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	k, err := loadSigningKeys(dir)
	if err != nil {
		return nil, err
	}
	c, err := k.ensureJWTs(dir)
	if err != nil {
		return nil, err
	}
	for _, r := range Roles() {
		p, ok := table[r]
		if !ok {
			return nil, fmt.Errorf("nats credentials: no permissions for role %s", r)
		}
		if err := ensureUser(dir, r, p, k.acc, k.accPub); err != nil {
			return nil, err
		}
	}
	if err := writeFile(filepath.Join(dir, AuthConfFile), c.ServerConf()); err != nil {
		return nil, err
	}
	return c, nil
}

// signingKeys are the operator's and the two accounts' keys, with their
// public keys.
type signingKeys struct {
	op, sys, acc          nkeys.KeyPair
	opPub, sysPub, accPub string
}

// loadSigningKeys loads the operator's and the accounts' keys in dir,
// creating those that are missing.
func loadSigningKeys(dir string) (signingKeys, error) {
	var k signingKeys
	var err error
	if k.op, err = loadKey(dir, "operator.nk", nkeys.CreateOperator, nkeys.PrefixByteOperator); err != nil {
		return k, err
	}
	k.opPub, _ = k.op.PublicKey()
	if k.sys, err = loadKey(dir, "SYS.nk", nkeys.CreateAccount, nkeys.PrefixByteAccount); err != nil {
		return k, err
	}
	k.sysPub, _ = k.sys.PublicKey()
	if k.acc, err = loadKey(dir, AccountName+".nk", nkeys.CreateAccount, nkeys.PrefixByteAccount); err != nil {
		return k, err
	}
	k.accPub, _ = k.acc.PublicKey()
	return k, nil
}

// ensureJWTs loads the operator's and the accounts' JWTs in dir, issuing
// those that are missing, and returns them as the credentials (without the
// users).
func (k signingKeys) ensureJWTs(dir string) (*Credentials, error) {
	opJWT, err := loadJWT(dir, OperatorJWTFile, k.opPub, k.opPub, func() (string, error) {
		oc := jwt.NewOperatorClaims(k.opPub)
		oc.Name = "herald"
		oc.SystemAccount = k.sysPub
		return oc.Encode(k.op)
	})
	if err != nil {
		return nil, err
	}
	sysJWT, err := loadJWT(dir, "SYS.jwt", k.sysPub, k.opPub, func() (string, error) {
		ac := jwt.NewAccountClaims(k.sysPub)
		ac.Name = "SYS"
		return ac.Encode(k.op)
	})
	if err != nil {
		return nil, err
	}
	accJWT, err := loadJWT(dir, AccountName+".jwt", k.accPub, k.opPub, func() (string, error) {
		ac := jwt.NewAccountClaims(k.accPub)
		ac.Name = AccountName
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1,
			MaxAckPending: -1, MemoryMaxStreamBytes: -1, DiskMaxStreamBytes: -1}
		return ac.Encode(k.op)
	})
	if err != nil {
		return nil, err
	}
	return &Credentials{Dir: dir, OperatorJWT: opJWT, SystemAccount: k.sysPub, Account: k.accPub,
		AccountJWTs: map[string]string{k.sysPub: sysJWT, k.accPub: accJWT}}, nil
}

// CredsPath is the role's .creds file.
func (c *Credentials) CredsPath(r Role) string { return filepath.Join(c.Dir, CredsFile(r)) }

// MaxControlLine is the servers' max_control_line: a client's CONNECT
// carries its user JWT, and with Herald's permissions a role's JWT is
// larger than nats-server's 4 KiB default.
const MaxControlLine = 32 << 10

// ServerConf is the nats-server configuration include that trusts the
// operator: include it from every server's config.
func (c *Credentials) ServerConf() []byte {
	var b bytes.Buffer
	b.WriteString("# Herald's NATS trust: written by herald (nats init or serve); do not edit.\n")
	fmt.Fprintf(&b, "max_control_line: %d\n", MaxControlLine)
	fmt.Fprintf(&b, "operator: %s\n", c.OperatorJWT)
	fmt.Fprintf(&b, "system_account: %s\n", c.SystemAccount)
	b.WriteString("resolver: MEMORY\nresolver_preload: {\n")
	for _, pub := range sortedKeys(c.AccountJWTs) {
		fmt.Fprintf(&b, "  %s: %s\n", pub, c.AccountJWTs[pub])
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func ensureUser(dir string, r Role, p Permissions, acc nkeys.KeyPair, accPub string) error {
	path := filepath.Join(dir, CredsFile(r))
	var user nkeys.KeyPair
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		user, err = jwt.ParseDecoratedUserNKey(raw)
		if err != nil {
			return fmt.Errorf("nats credentials %s: %w", path, err)
		}
		if tok, err := jwt.ParseDecoratedJWT(raw); err == nil {
			if uc, err := jwt.DecodeUserClaims(tok); err == nil && uc.Issuer == accPub && samePermissions(uc.Permissions, p) {
				return nil
			}
		}
	case errors.Is(err, fs.ErrNotExist):
		if user, err = nkeys.CreateUser(); err != nil {
			return fmt.Errorf("nats credentials: %w", err)
		}
	default:
		return fmt.Errorf("nats credentials: %w", err)
	}
	pub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = string(r)
	uc.Permissions = jwtPermissions(p)
	tok, err := uc.Encode(acc)
	if err != nil {
		return fmt.Errorf("nats credentials %s: %w", r, err)
	}
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		return fmt.Errorf("nats credentials %s: %w", r, err)
	}
	return writeFile(path, creds)
}

func jwtPermissions(p Permissions) jwt.Permissions {
	var j jwt.Permissions
	j.Pub.Allow.Add(p.Publish.Allow...)
	j.Pub.Deny.Add(p.Publish.Deny...)
	j.Sub.Allow.Add(p.Subscribe.Allow...)
	j.Sub.Deny.Add(p.Subscribe.Deny...)
	if p.Responses {
		j.Resp = &jwt.ResponsePermission{MaxMsgs: 1, Expires: responseWindow}
	}
	return j
}

// responseWindow is how long a served request may take to be answered.
const responseWindow = time.Minute

func samePermissions(j jwt.Permissions, p Permissions) bool {
	want := jwtPermissions(p)
	same := func(a, b jwt.StringList) bool {
		x, y := slices.Clone([]string(a)), slices.Clone([]string(b))
		slices.Sort(x)
		slices.Sort(y)
		return slices.Equal(x, y)
	}
	return same(j.Pub.Allow, want.Pub.Allow) && same(j.Pub.Deny, want.Pub.Deny) &&
		same(j.Sub.Allow, want.Sub.Allow) && same(j.Sub.Deny, want.Sub.Deny) &&
		(j.Resp == nil) == (want.Resp == nil) && (j.Resp == nil || *j.Resp == *want.Resp)
}

// loadKey reads a seed from dir/name, or creates and stores one.
func loadKey(dir, name string, create func() (nkeys.KeyPair, error), prefix nkeys.PrefixByte) (nkeys.KeyPair, error) {
	path := filepath.Join(dir, name)
	seed, err := os.ReadFile(path)
	if err == nil {
		kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
		if err != nil {
			return nil, fmt.Errorf("nats credentials %s: %w", path, err)
		}
		if pub, _ := kp.PublicKey(); !nkeys.IsValidPublicKey(pub) || nkeys.Prefix(pub) != prefix {
			return nil, fmt.Errorf("nats credentials %s: not the right kind of key", path)
		}
		return kp, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	kp, err := create()
	if err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	s, _ := kp.Seed()
	return kp, writeFile(path, append(s, '\n'))
}

// loadJWT reads a JWT for subject issued by issuer from dir/name, or issues
// and stores one.
func loadJWT(dir, name, subject, issuer string, issue func() (string, error)) (string, error) {
	path := filepath.Join(dir, name)
	raw, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(raw))
		c, err := jwt.Decode(tok)
		if err != nil {
			return "", fmt.Errorf("nats credentials %s: %w", path, err)
		}
		if cd := c.Claims(); cd.Subject != subject || cd.Issuer != issuer {
			return "", fmt.Errorf("nats credentials %s: issued for another key", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	tok, err := issue()
	if err != nil {
		return "", fmt.Errorf("nats credentials %s: %w", name, err)
	}
	return tok, writeFile(path, []byte(tok+"\n"))
}

// writeFile replaces path with data, 0600, atomically.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("nats credentials: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("nats credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("nats credentials: %w", err)
	}
	return nil
}

// RoleOfCreds reads the role a .creds file is for (its user's name), ""
// when the user is not one of Herald's roles (then the connection keeps
// the default _INBOX prefix).
func RoleOfCreds(path string) (Role, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok, err := jwt.ParseDecoratedJWT(raw)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return "", fmt.Errorf("%s: not a user's credentials: %w", path, err)
	}
	if r, err := ParseRole(uc.Name); err == nil {
		return r, nil
	}
	return "", nil
}

// Revoke invalidates the role's current credentials and issues new ones: the
// user's public key joins the HERALD account's revocations (the operator
// signs the account JWT again) and a new user key is made for the role.
// Servers learn it from the new auth.conf: herald serve at its next start,
// a cluster's nodes on a config reload.
func Revoke(dir string, r Role, table map[Role]Permissions) (*Credentials, error) {
	path := filepath.Join(dir, CredsFile(r))
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("revoke %s: %w", r, err)
	}
	user, err := jwt.ParseDecoratedUserNKey(raw)
	if err != nil {
		return nil, fmt.Errorf("revoke %s: %w", r, err)
	}
	userPub, _ := user.PublicKey()
	op, err := loadKey(dir, "operator.nk", nkeys.CreateOperator, nkeys.PrefixByteOperator)
	if err != nil {
		return nil, err
	}
	accPath := filepath.Join(dir, AccountName+".jwt")
	tok, err := os.ReadFile(accPath)
	if err != nil {
		return nil, fmt.Errorf("revoke %s: %w", r, err)
	}
	ac, err := jwt.DecodeAccountClaims(strings.TrimSpace(string(tok)))
	if err != nil {
		return nil, fmt.Errorf("revoke %s: %s: %w", r, accPath, err)
	}
	ac.Revoke(userPub)
	signed, err := ac.Encode(op)
	if err != nil {
		return nil, fmt.Errorf("revoke %s: %w", r, err)
	}
	if err := writeFile(accPath, []byte(signed+"\n")); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("revoke %s: %w", r, err)
	}
	return Ensure(dir, table)
}
