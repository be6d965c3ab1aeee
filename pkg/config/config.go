// Package config reads herald.yaml. The file is a set of top-level sections;
// each component decodes and validates its own section, so a service owns its
// configuration and a typo anywhere is reported with its line and key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/caarlos0/env/v11"
	"go.yaml.in/yaml/v3"
)

// ErrInvalid wraps every configuration error, so callers can tell bad
// configuration (exit code 2) from a runtime failure.
var ErrInvalid = errors.New("invalid configuration")

// Validator is implemented by sections that check their own values. Errors
// should name the key at fault, e.g. "apps.shop.deliveryPolicy: …".
type Validator interface {
	Validate() error
}

// File is a parsed configuration file.
type File struct {
	source   string
	sections map[string]*yaml.Node
	lines    map[string]int // each section's line, for errors
}

// Load reads path; an empty path gives an empty file (every default).
func Load(path string) (*File, error) {
	if path == "" {
		return &File{source: "defaults", sections: map[string]*yaml.Node{}}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return Parse(path, b)
}

// Parse reads configuration from bytes; source names it in errors.
func Parse(source string, b []byte) (*File, error) {
	f := &File{source: source, sections: map[string]*yaml.Node{}, lines: map[string]int{}}
	if len(bytes.TrimSpace(b)) == 0 {
		return f, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, source, err)
	}
	if len(doc.Content) == 0 {
		return f, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: %s: line %d: the top level must be a mapping of sections", ErrInvalid, source, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if _, dup := f.sections[k.Value]; dup {
			return nil, fmt.Errorf("%w: %s: line %d: section %q appears twice", ErrInvalid, source, k.Line, k.Value)
		}
		f.sections[k.Value] = root.Content[i+1]
		f.lines[k.Value] = k.Line
	}
	return f, nil
}

// Source names where the configuration came from.
func (f *File) Source() string { return f.source }

// Has reports whether the file sets a section.
func (f *File) Has(key string) bool { _, ok := f.sections[key]; return ok }

// Section decodes one top-level section into into, which holds the defaults
// on entry: absent keys keep them. Unknown keys are errors. Environment
// variables named by `env:"…"` struct tags then override the file, and the
// section is validated if it implements Validator.
func (f *File) Section(key string, into any) error {
	if n, ok := f.sections[key]; ok {
		if err := checkKeys(n, reflect.TypeOf(into), key); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, f.source, err)
		}
		if err := n.Decode(into); err != nil {
			return fmt.Errorf("%w: %s: section %s: %w", ErrInvalid, f.source, key, err)
		}
	}
	// Environment variables override struct sections; a section that is a
	// map (apps: name → settings) has no fixed keys to name in a tag.
	if rv := reflect.ValueOf(into); rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Struct {
		if err := env.Parse(into); err != nil {
			return fmt.Errorf("%w: environment override of section %s: %w", ErrInvalid, key, err)
		}
	}
	if v, ok := into.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%w: %s: %s.%w", ErrInvalid, f.source, key, err)
		}
	}
	return nil
}

// CheckKnown reports top-level sections that no component reads.
func (f *File) CheckKnown(known ...string) error {
	var unknown []string
	for k := range f.sections {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.SortFunc(unknown, func(a, b string) int { return f.lines[a] - f.lines[b] })
	for i, k := range unknown {
		unknown[i] = fmt.Sprintf("%s (line %d)", k, f.lines[k])
	}
	known = slices.Sorted(slices.Values(known))
	return fmt.Errorf("%w: %s: unknown section(s) %s (known: %s)", ErrInvalid, f.source,
		strings.Join(unknown, ", "), strings.Join(known, ", "))
}
