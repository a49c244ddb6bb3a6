// Package credential holds Tencent Cloud API credentials and the providers
// that find them: static values, environment variables, the INI profile
// file, and a chain of these.
//
// Secrets never leave a [Credential] through formatting: fmt (every verb),
// log/slog and encoding/json all see a redacted form that keeps only the
// SecretId's first and last four characters. Providers are formatted the
// same way.
package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Credential is a SecretId and SecretKey, with a Token for temporary (STS)
// credentials.
type Credential struct {
	SecretId  string //nolint:revive // the API's own spelling
	SecretKey string
	Token     string
}

// ErrNotFound means a provider has no credential to offer; a [Chain] moves
// on to the next provider. Test with errors.Is.
var ErrNotFound = errors.New("credential not found")

// Provider finds a credential. It is called before every signed attempt, so
// a provider whose credential rotates is picked up without restarting.
type Provider interface {
	Credential(ctx context.Context) (Credential, error)
}

// Validate reports a missing SecretId or SecretKey.
func (c Credential) Validate() error {
	switch {
	case c.SecretId == "":
		return errors.New("credential: SecretId is empty")
	case c.SecretKey == "":
		return errors.New("credential: SecretKey is empty")
	}
	return nil
}

// MaskID shows the first and last four characters of a SecretId, enough to
// tell keys apart in a log.
func MaskID(id string) string {
	if len(id) <= 8 {
		return "****"
	}
	return id[:4] + "****" + id[len(id)-4:]
}

func (c Credential) redacted() string {
	s := "Credential{SecretId: " + MaskID(c.SecretId) + ", SecretKey: [redacted]"
	if c.Token != "" {
		s += ", Token: [redacted]"
	}
	return s + "}"
}

// String returns the redacted form.
func (c Credential) String() string { return c.redacted() }

// GoString returns the redacted form, for %#v.
func (c Credential) GoString() string { return c.redacted() }

// Format prints the redacted form for every verb, so neither %v, %+v, %#v,
// %s, %q nor %x shows a secret.
func (c Credential) Format(f fmt.State, _ rune) { io.WriteString(f, c.redacted()) }

// LogValue makes slog print the redacted form.
func (c Credential) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("secret_id", MaskID(c.SecretId)), slog.String("secret_key", "[redacted]")}
	if c.Token != "" {
		attrs = append(attrs, slog.String("token", "[redacted]"))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON writes the redacted form: a Credential is never serialised
// with its secrets.
func (c Credential) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"SecretId": MaskID(c.SecretId), "SecretKey": "[redacted]"})
}
