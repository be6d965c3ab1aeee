//go:build !race

package deploy_test

// raceEnabled: see race_test.go.
const raceEnabled = false
