package event

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// uriParts splits a URI reference into scheme, authority, path, query and
// fragment: the regular expression of RFC 3986, appendix B. It matches any
// string; checkURIReference then checks each part's characters.
var uriParts = regexp.MustCompile(`^(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$`)

var schemePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// Character classes of RFC 3986, section 2 and 3.
const (
	unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	subDelims  = "!$&'()*+,;="
	pchar      = unreserved + subDelims + ":@"
)

// checkURIReference tells whether s is a non-empty URI-reference (RFC 3986,
// section 4.1), as CloudEvents requires of source. net/url is lenient (it
// accepts spaces, say), so the grammar is checked here.
func checkURIReference(s string) error {
	if s == "" {
		return errors.New("it is empty")
	}
	m := uriParts.FindStringSubmatchIndex(s)
	part := func(i int) (string, bool) {
		if m[2*i] < 0 {
			return "", false
		}
		return s[m[2*i]:m[2*i+1]], true
	}
	scheme, hasScheme := part(1)
	authority, hasAuthority := part(2)
	path, _ := part(3)
	query, _ := part(4)
	fragment, _ := part(5)
	if hasScheme && !schemePattern.MatchString(scheme) {
		return fmt.Errorf("scheme %q is not a letter followed by letters, digits, '+', '-' or '.'", scheme)
	}
	if !hasScheme {
		// A relative reference's first segment may not hold a colon (it
		// would read as a scheme): "1a:b" is neither form.
		if first, _, _ := strings.Cut(path, "/"); !hasAuthority && strings.Contains(first, ":") {
			return errors.New("the first path segment of a relative reference may not contain ':'")
		}
	}
	if hasAuthority {
		if err := checkAuthority(authority); err != nil {
			return err
		}
	}
	if err := checkChars("path", path, pchar+"/"); err != nil {
		return err
	}
	if err := checkChars("query", query, pchar+"/?"); err != nil {
		return err
	}
	return checkChars("fragment", fragment, pchar+"/?")
}

// checkAuthority checks [userinfo "@"] host [":" port].
func checkAuthority(a string) error {
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		if err := checkChars("userinfo", a[:i], unreserved+subDelims+":"); err != nil {
			return err
		}
		a = a[i+1:]
	}
	host, port := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return errors.New("an IP literal host is missing its ']'")
		}
		lit := a[1:end]
		host, port = a[:end+1], strings.TrimPrefix(a[end+1:], ":")
		if rest := a[end+1:]; rest != "" && rest[0] != ':' {
			return fmt.Errorf("unexpected %q after the host %s", rest, host)
		}
		if strings.HasPrefix(lit, "v") || strings.HasPrefix(lit, "V") {
			// IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
			ver, rest, ok := strings.Cut(lit[1:], ".")
			if !ok || ver == "" || strings.Trim(ver, "0123456789abcdefABCDEF") != "" || rest == "" {
				return fmt.Errorf("host %s is not a valid IPvFuture literal", host)
			}
			if err := checkChars("host", rest, unreserved+subDelims+":"); err != nil {
				return err
			}
		} else if ip, err := netip.ParseAddr(lit); err != nil || !ip.Is6() || ip.Zone() != "" {
			return fmt.Errorf("host %s is not an IPv6 address", host)
		}
	} else {
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			host, port = a[:i], a[i+1:]
		}
		if err := checkChars("host", host, unreserved+subDelims); err != nil {
			return err
		}
	}
	if strings.Trim(port, "0123456789") != "" {
		return fmt.Errorf("port %q is not a number", port)
	}
	return nil
}

// checkChars reports the first character of s outside allowed that is not
// part of a percent-encoding ("%" and two hex digits).
func checkChars(what, s, allowed string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return fmt.Errorf("%s: '%%' at byte %d does not start a percent-encoding (%%XX)", what, i)
			}
			i += 2
			continue
		}
		if strings.IndexByte(allowed, c) < 0 {
			return fmt.Errorf("%s: character %q at byte %d is not allowed in a URI (percent-encode it)", what, rune(c), i)
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
