package otp

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/sms"
)

// CodeMark stands for the code wherever a payload is recorded.
const CodeMark = "[code]"

// placeholder matches a DLT template variable: {#var#} or a typed one.
var placeholder = regexp.MustCompile(`\{#(var|numeric|alphanumeric|url)#\}`)

// maxVariableLen is DLT's limit on one variable's value.
const maxVariableLen = 30

// Minutes is the code's validity in whole minutes (at least 1), as messages say it.
func (a *AppSettings) Minutes() int { return max(1, int(math.Ceil(a.TTL.D().Minutes()))) }

func (a *AppSettings) value(v string, code string) string {
	switch v {
	case "{code}":
		return code
	case "{minutes}":
		return strconv.Itoa(a.Minutes())
	case "{app}":
		return a.DisplayName
	}
	return v
}

// Variables are the DLT template's values in template order.
func (a *AppSettings) Variables(code string) []string {
	out := make([]string, len(a.DLT.Variables))
	for i, v := range a.DLT.Variables {
		out[i] = a.value(v.Value, code)
	}
	return out
}

// FilledText is the registered template with its variables filled in
// (the dlt_manual route's message).
func (a *AppSettings) FilledText(code string) string {
	vals := a.Variables(code)
	i := 0
	return placeholder.ReplaceAllStringFunc(a.DLT.Text, func(m string) string {
		if i >= len(vals) {
			return m
		}
		i++
		return vals[i-1]
	})
}

// QuickMessage is the non-DLT message.
func (a *AppSettings) QuickMessage(code string) string {
	s := strings.ReplaceAll(a.QuickText, "{code}", code)
	s = strings.ReplaceAll(s, "{minutes}", strconv.Itoa(a.Minutes()))
	return strings.ReplaceAll(s, "{app}", a.DisplayName)
}

// Message builds what a leg sends: the provider's message for its route.
func (a *AppSettings) Message(leg Leg, phone, code string) sms.Message {
	m := sms.Message{To: phone, Route: leg.Route, SenderID: a.DLT.SenderID}
	switch leg.Route {
	case sms.RouteDLT:
		m.MessageID, m.Variables = a.DLT.MessageID, a.Variables(code)
		m.TemplateID, m.EntityID = a.DLT.TemplateID, a.DLT.EntityID
		m.Text = a.FilledText(code)
	case sms.RouteDLTManual:
		m.Text, m.TemplateID, m.EntityID = a.FilledText(code), a.DLT.TemplateID, a.DLT.EntityID
	default:
		m.Text = a.QuickMessage(code)
	}
	return m
}

// Payload is dlt_payload_ready for a leg: what was built, the code redacted.
func (a *AppSettings) Payload(leg Leg) event.DLTPayloadReady {
	p := event.DLTPayloadReady{App: a.Name, Provider: leg.Provider, Route: leg.Route, Variables: []string{}}
	if leg.IsDLT() {
		p.SenderID, p.EntityID, p.TemplateID = a.DLT.SenderID, a.DLT.EntityID, a.DLT.TemplateID
		if leg.Route == sms.RouteDLT {
			p.MessageID = a.DLT.MessageID
		}
		p.Variables = a.Variables(CodeMark)
	}
	return p
}

// Health checks the template metadata of every app that may use DLT:
// missing ids, variable count and order against the registered text, a
// non-numeric value for a numeric tag, a value over 30 characters.
func (s *Settings) Health() []event.ConfigProblem {
	problems := []event.ConfigProblem{}
	for _, name := range s.AppNames() {
		problems = append(problems, s.Apps[name].health()...)
	}
	return problems
}

// health lists what is wrong with the app's DLT registration; an app that
// never sends over DLT has none.
func (a *AppSettings) health() []event.ConfigProblem {
	if a.DeliveryPolicy == QuickOnly {
		return nil
	}
	p := &dltProblems{app: a.Name}
	a.checkDLTIDs(p)
	a.checkDLTVariables(p)
	a.checkDLTText(p)
	return p.out
}

// dltProblems collects one app's DLT problems, named by their field.
type dltProblems struct {
	app string
	out []event.ConfigProblem
}

func (p *dltProblems) add(field, format string, args ...any) {
	p.out = append(p.out, event.ConfigProblem{App: p.app, Field: "apps." + p.app + ".dlt." + field, Problem: fmt.Sprintf(format, args...)})
}

// checkDLTIDs checks the sender, entity, template and message ids.
func (a *AppSettings) checkDLTIDs(p *dltProblems) {
	d := a.DLT
	if d.SenderID == "" {
		p.add("senderId", "missing")
	} else if len(d.SenderID) != 6 {
		p.add("senderId", "%q is not a 6-character DLT header", d.SenderID)
	}
	if d.EntityID == "" {
		p.add("entityId", "missing")
	} else if !isDigits(d.EntityID) {
		p.add("entityId", "%q is not numeric", d.EntityID)
	}
	if d.TemplateID == "" {
		p.add("templateId", "missing")
	} else if !isDigits(d.TemplateID) || len(d.TemplateID) != 19 {
		p.add("templateId", "%q is not a 19-digit TRAI template id", d.TemplateID)
	}
	if d.Route == sms.RouteDLT {
		if d.MessageID == "" {
			p.add("messageId", "missing (route dlt sends Fast2SMS's message id)")
		} else if !isDigits(d.MessageID) {
			p.add("messageId", "%q is not a numeric Fast2SMS message id", d.MessageID)
		}
	}
}

// checkDLTVariables checks each variable's value against its tag and
// length, and that the code is one of them, once.
func (a *AppSettings) checkDLTVariables(p *dltProblems) {
	codes := 0
	for i, v := range a.DLT.Variables {
		val := a.value(v.Value, strings.Repeat("0", a.CodeLength))
		if v.Value == "{code}" {
			codes++
		}
		if v.Tag == "numeric" && !isDigits(val) {
			p.add(fmt.Sprintf("variables[%d]", i), "value %q is not numeric but the tag is numeric", val)
		}
		if len(val) > maxVariableLen {
			p.add(fmt.Sprintf("variables[%d]", i), "value is %d characters; DLT allows %d", len(val), maxVariableLen)
		}
	}
	if codes != 1 {
		p.add("variables", "the code ({code}) appears %d times; it must appear once", codes)
	}
}

// checkDLTText checks that the registered template text is there and that
// its placeholders match the variables, in number and in tag order.
func (a *AppSettings) checkDLTText(p *dltProblems) {
	d := a.DLT
	if d.Text == "" {
		p.add("text", "missing: the registered template text is needed for dlt_manual and to check the variables")
		return
	}
	marks := placeholder.FindAllStringSubmatch(d.Text, -1)
	if len(marks) != len(d.Variables) {
		p.add("variables", "%d variables configured but the template has %d", len(d.Variables), len(marks))
	}
	for i := range min(len(marks), len(d.Variables)) {
		if t := marks[i][1]; t != "var" && d.Variables[i].Tag != "var" && t != d.Variables[i].Tag {
			p.add(fmt.Sprintf("variables[%d]", i), "tag %s is out of order: the template's variable %d is {#%s#}", d.Variables[i].Tag, i+1, t)
		}
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
