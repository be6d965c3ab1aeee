//go:build race

package deploy_test

// raceEnabled: the tests run under the race detector, so the herald binary
// they start is built with it too (a race in a process the tests run would
// otherwise go unseen).
const raceEnabled = true
