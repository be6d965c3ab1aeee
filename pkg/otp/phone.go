package otp

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/heraldhq/herald/pkg/sms"
)

var (
	e164         = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	indianMobile = regexp.MustCompile(`^\+91[6-9][0-9]{9}$`)
)

// NormalizePhone accepts E.164 (+919876543210) or a 10-digit Indian mobile
// number (9876543210, read as +91…), spaces and dashes ignored, and checks
// that the app's first provider can deliver to it (Fast2SMS: Indian mobiles only).
func (a *AppSettings) NormalizePhone(in string) (string, error) {
	p := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '(', ')':
			return -1
		}
		return r
	}, strings.TrimSpace(in))
	if len(p) == 10 && !strings.HasPrefix(p, "+") && isDigits(p) {
		p = "+91" + p
	}
	if !e164.MatchString(p) {
		return "", fmt.Errorf("phone must be E.164 (like +919876543210) or a 10-digit Indian mobile number")
	}
	for _, prov := range a.Providers {
		if prov != sms.Fast2SMS {
			return p, nil // another provider can take it
		}
	}
	if !indianMobile.MatchString(p) {
		return "", fmt.Errorf("app %s sends through fast2sms, which delivers only to Indian mobile numbers (+91 then 10 digits starting 6-9)", a.Name)
	}
	return p, nil
}
