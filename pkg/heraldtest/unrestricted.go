package heraldtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/heraldhq/herald/pkg/access"
)

// UnrestrictedCreds writes, for this test only, the credentials of a user
// of the HERALD account without permission limits (signed with the
// account's key in credsDir), and returns the file: to set up a state no
// role can, such as an older version's consumers. Herald never issues one.
func UnrestrictedCreds(t testing.TB, credsDir string) string {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join(credsDir, access.AccountName+".nk"))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		t.Fatal(err)
	}
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = "test-unrestricted"
	tok, err := uc.Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	useed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(tok, useed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "unrestricted.creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
