package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/heraldhq/herald/pkg/bus"
)

// Pair compares Herald's figure with the raw JetStream reference.
type Pair struct {
	Name  string
	Raw   []Result
	Typed []Result
}

// Median returns the median rate of results.
func Median(rs []Result) Result {
	s := append([]Result(nil), rs...)
	slices.SortFunc(s, func(a, b Result) int { return cmp.Compare(a.Rate(), b.Rate()) })
	return s[len(s)/2]
}

// Ratio is the median of the rounds' typed / raw ratios: each round's two
// sides ran back to back on the same server, so their ratio is the fair one.
func (p Pair) Ratio() float64 {
	rs := make([]float64, len(p.Raw))
	for i := range p.Raw {
		rs[i] = p.Typed[i].Rate() / p.Raw[i].Rate()
	}
	slices.Sort(rs)
	return rs[len(rs)/2]
}

// BusReport is the backbone benchmark: publish and consume, typed against raw.
type BusReport struct {
	Publish, Consume Pair
}

// CompareBus runs rounds of raw and typed publish, then of raw and typed
// consume, and keeps every result. The order within a round alternates:
// each publish makes the stream and the de-duplication window larger, so
// the side that always ran second would always pay more.
func CompareBus(ctx context.Context, b *bus.Bus, n, rounds int, progress io.Writer) (BusReport, error) {
	r := BusReport{Publish: Pair{Name: "publish"}, Consume: Pair{Name: "consume"}}
	// Warm up the server and the client (allocation pools, stream files).
	if _, err := RawPublish(ctx, b, n/10); err != nil {
		return r, err
	}
	for i := range rounds {
		var raw, typed Result
		var err error
		if i%2 == 0 {
			if raw, err = RawPublish(ctx, b, n); err == nil {
				typed, err = TypedPublish(ctx, b, n)
			}
		} else {
			if typed, err = TypedPublish(ctx, b, n); err == nil {
				raw, err = RawPublish(ctx, b, n)
			}
		}
		if err != nil {
			return r, err
		}
		r.Publish.Raw, r.Publish.Typed = append(r.Publish.Raw, raw), append(r.Publish.Typed, typed)
		fmt.Fprintf(progress, "round %d/%d publish: raw %.0f/s, typed %.0f/s\n", i+1, rounds, raw.Rate(), typed.Rate())
	}
	for i := range rounds {
		var raw, typed Result
		var err error
		rawName, typedName := fmt.Sprintf("bench-raw-%d", i), fmt.Sprintf("bench-typed-%d", i)
		if i%2 == 0 {
			if raw, err = RawConsume(ctx, b, n, rawName); err == nil {
				typed, err = TypedConsume(ctx, b, n, typedName)
			}
		} else {
			if typed, err = TypedConsume(ctx, b, n, typedName); err == nil {
				raw, err = RawConsume(ctx, b, n, rawName)
			}
		}
		if err != nil {
			return r, err
		}
		r.Consume.Raw, r.Consume.Typed = append(r.Consume.Raw, raw), append(r.Consume.Typed, typed)
		fmt.Fprintf(progress, "round %d/%d consume: raw %.0f/s, typed %.0f/s\n", i+1, rounds, raw.Rate(), typed.Rate())
	}
	return r, nil
}

// Write prints the report as a Markdown table.
func (r BusReport) Write(w io.Writer) {
	fmt.Fprintln(w, "| operation | raw JetStream msg/s (median) | Herald typed msg/s (median) | ratio (median of rounds) | raw core-µs/msg | typed core-µs/msg |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, p := range []Pair{r.Publish, r.Consume} {
		raw, typed := Median(p.Raw), Median(p.Typed)
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f %% | %.1f | %.1f |\n", p.Name, raw.Rate(), typed.Rate(), p.Ratio()*100,
			us(raw.CPUPerMsg()), us(typed.CPUPerMsg()))
	}
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
