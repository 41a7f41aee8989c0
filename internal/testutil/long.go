package testutil

import (
	"os"
	"strconv"
)

// EnvLong is the environment variable that opts in to the exhaustive test
// grids (the full DeepGEMM shape grid of gemm/gemmtest, the full FlashMLA
// decode grid of mla/mlatest): FIREFLYER_LONG=1 go test ./gemm/... ./mla/...
// Without it, the suites run their sampled grids, so that a plain
// `go test -race ./...` stays within minutes; a scheduled job runs the long
// mode.
const EnvLong = "FIREFLYER_LONG"

// Long reports whether the exhaustive test grids are asked for: EnvLong is
// set to a value strconv.ParseBool reads as true (1, t, true, TRUE, ...).
// It is the one place the variable is read; a suite combines it with
// testing.Short(), which always wins.
func Long() bool {
	v, err := strconv.ParseBool(os.Getenv(EnvLong))
	return err == nil && v
}
