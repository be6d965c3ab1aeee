package notifier

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

func weekly(t *testing.T, days []string, start, dur, tz string, from, until time.Time) *Silence {
	t.Helper()
	rw := &event.RecurringWindow{Days: days, Start: start, Duration: dur, TimeZone: tz}
	ms := []event.SilenceMatcher{{Name: "app", Value: "shop"}}
	rules, err := compileSilence(ms, rw)
	if err != nil {
		t.Fatal(err)
	}
	return &Silence{ID: "sil-0000000000000001", Matchers: ms, StartsAt: from, EndsAt: until, Recurring: rw, rules: rules}
}

func TestRecurringWindows(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	since := at("2026-01-01 00:00")
	// Saturdays 22:00 for 4 h, Berlin time: overnight into Sunday.
	sat := weekly(t, []string{"sat"}, "22:00", "4h", "Europe/Berlin", since, time.Time{})
	tests := []struct {
		name   string
		s      *Silence
		t      string
		active bool
		next   string // the next change after t
	}{
		{"before the window", sat, "2026-11-21 21:59", false, "2026-11-21 22:00"},
		{"its start", sat, "2026-11-21 22:00", true, "2026-11-22 02:00"},
		{"after midnight, still in it", sat, "2026-11-22 01:30", true, "2026-11-22 02:00"},
		{"its end", sat, "2026-11-22 02:00", false, "2026-11-28 22:00"},
		{"a weekday", sat, "2026-11-25 23:00", false, "2026-11-28 22:00"},
		// 25 October 2026: clocks go back at 03:00 in Berlin; the window
		// still starts at 22:00 local time the day before and the next week.
		{"the week after the change", sat, "2026-10-31 22:00", true, "2026-11-01 02:00"},
		{"before the series starts", weekly(t, []string{"sat"}, "22:00", "4h", "Europe/Berlin", at("2026-11-28 00:00"), time.Time{}),
			"2026-11-21 23:00", false, "2026-11-28 22:00"},
		{"the series' end cuts a window", weekly(t, []string{"sat"}, "22:00", "4h", "Europe/Berlin", since, at("2026-11-22 01:00")),
			"2026-11-22 00:30", true, "2026-11-22 01:00"},
		{"after the series' end", weekly(t, []string{"sat"}, "22:00", "4h", "Europe/Berlin", since, at("2026-11-22 01:00")),
			"2026-11-22 01:30", false, ""},
		{"every weekday", weekly(t, []string{"mon", "tue", "wed", "thu", "fri"}, "09:00", "30m", "Europe/Berlin", since, time.Time{}),
			"2026-11-27 09:45", false, "2026-11-30 09:00"},
	}
	// 25 October 2026: clocks go back at 03:00 in Berlin. A window lasts
	// its duration of real time, starting at 22:00 local time each week.
	if start := at("2026-10-24 22:00"); !sat.ActiveAt(start) || !sat.nextChange(start).Equal(start.Add(4*time.Hour)) {
		t.Errorf("across the DST change: active %v, ends %s", sat.ActiveAt(start), sat.nextChange(start))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := at(tt.t)
			if got := tt.s.ActiveAt(now); got != tt.active {
				t.Errorf("active at %s: %v", now, got)
			}
			var want time.Time
			if tt.next != "" {
				want = at(tt.next)
			}
			if got := tt.s.nextChange(now); !got.Equal(want) {
				t.Errorf("next change after %s: %s, want %s", now, got.In(berlin), want)
			}
		})
	}
}

func TestSilenceMatchers(t *testing.T) {
	snap := &Snapshot{Rule: "otp-failure-rate", Severity: "P2", Group: map[string]string{"app": "shop", "provider": "fast2sms"}}
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"app=shop"}, true},
		{[]string{"app=shop", "provider=twilio"}, false},
		{[]string{"app=~sh.p"}, true},
		{[]string{"app=~sh"}, false}, // anchored
		{[]string{"severity=~P[12]", "rule=otp-failure-rate"}, true},
		{[]string{"route=dlt"}, false}, // a label the incident lacks
	}
	for _, tt := range tests {
		ms, err := ParseMatchers(tt.args)
		if err != nil {
			t.Fatal(err)
		}
		rules, _ := compileSilence(ms, nil)
		s := &Silence{Matchers: ms, rules: rules}
		if got := s.Matches(snap); got != tt.want {
			t.Errorf("%v: %v", tt.args, got)
		}
		if MatcherString(ms) != strings.Join(tt.args, " ") {
			t.Errorf("MatcherString %q", MatcherString(ms))
		}
	}
}
