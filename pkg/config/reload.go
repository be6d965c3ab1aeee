package config

import "context"

// Reloader is a component that applies a new configuration without a
// restart (herald serve reloads on SIGHUP). Services provide one into the
// fx group "reloaders"; Reload gets the freshly read file and either applies
// its section or returns an error, keeping what it had.
type Reloader struct {
	Name   string
	Reload func(ctx context.Context, f *File) error
}
