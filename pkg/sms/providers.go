package sms

import (
	"net"
	"net/http"
	"time"
)

// New builds every provider's client, sharing one HTTP transport sized for
// concurrency calls in flight.
func New(cfg Config) map[string]Provider {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        cfg.Concurrency * 2,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // an API does not redirect a send; do not resend it elsewhere
	}}
	return map[string]Provider{
		Fast2SMS: NewFast2SMS(cfg.Fast2SMS, client),
		Twilio:   NewTwilio(cfg.Twilio, client),
		Sim:      NewSim(cfg.Sim),
	}
}
