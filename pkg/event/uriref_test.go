package event

import "testing"

func TestCheckURIReferenceFollowsRFC3986(t *testing.T) {
	valid := []string{
		"billing", "billing-service", "shop.checkout", "/shop/checkout", "./a", "../a", "a/b:c",
		"urn:uuid:0193a5a0-7c1e-7000-8000-000000000000", "mailto:ops@example.com",
		"https://shop.example.com/checkout", "https://user:pw@shop.example.com:8443/a?b=c#d",
		"//shop.example.com", "//[::1]:8080/x", "//[v1.fe80::a+en1]/", "//127.0.0.1", "//host:",
		"a%20b", "%E2%82%AC", "?q=1", "#frag", "a?b/c?d", "x:", "tag:example.com,2026:shop",
		"!$&'()*+,;=", "a@b",
	}
	for _, s := range valid {
		if err := checkURIReference(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	invalid := []string{
		"", " ", "billing service", " billing", "billing\n", "billing\t", "a\x00b",
		"a%2", "a%zz", "%", "1abc:def", ":nope", "a b:c", "-x:y",
		"http://exa mple.com", "http://[::1", "http://[::1]x/", "http://[fe80::1%25en0]/", "http://[1.2.3.4]/", "http://[v.x]/",
		"http://host:80a/", "http://a^b/", "a#b#c", "a[b]", "a\\b", "a\"b", "a<b>", "a{b}", "a|b", "a`b", "é",
	}
	for _, s := range invalid {
		if err := checkURIReference(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
