package policywasm

import (
	"testing"

	"github.com/wardenauthz/warden/policywasm/wasmtest"
)

// guestModule builds testdata/guests/<name>.
func guestModule(t testing.TB, name string) []byte {
	return wasmtest.Build(t, "testdata/guests/"+name, "guest")
}
