package extauthz

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
)

// TestEnvoyConfigs: the Envoy configurations of docs/proxies.md decode, as
// written, strictly into go-control-plane's types: the gRPC one as a whole
// bootstrap, the HTTP mode's filters as a connection manager's. No field
// is unknown, every typed config names a type Envoy has, and each is
// valid by its proto's rules.
func TestEnvoyConfigs(t *testing.T) {
	data, err := os.ReadFile("../../../docs/proxies.md")
	if err != nil {
		t.Fatal(err)
	}
	grpcBlock := section(t, string(data), "## Envoy (gRPC)")
	httpBlock := section(t, string(data), "## Envoy (HTTP mode)")

	var boot bootstrapv3.Bootstrap
	decodeStrict(t, grpcBlock, &boot)
	if err := boot.ValidateAll(); err != nil {
		t.Fatalf("the bootstrap: %v", err)
	}
	var hcm hcmv3.HttpConnectionManager
	decodeStrict(t, httpBlock, &hcm)
	if len(hcm.GetHttpFilters()) != 2 {
		t.Fatalf("the HTTP mode's filters: %v", hcm.GetHttpFilters())
	}
	for _, f := range hcm.GetHttpFilters() {
		if err := f.ValidateAll(); err != nil {
			t.Fatalf("filter %s: %v", f.GetName(), err)
		}
	}
	// The gRPC filter names the cluster that points at Warden over HTTP/2.
	if !strings.Contains(grpcBlock, "cluster_name: warden") || !strings.Contains(grpcBlock, "http2_protocol_options") {
		t.Fatal("the bootstrap does not send checks to the warden cluster over HTTP/2")
	}

	// Strictness: an unknown field, or an unknown type, is refused.
	var probe bootstrapv3.Bootstrap
	if err := decode(strings.Replace(grpcBlock, "stat_prefix: app", "stat_prefix: app\n                colour: red", 1), &probe); err == nil {
		t.Fatal("an unknown field was taken")
	}
	if err := decode(strings.Replace(grpcBlock, "v3.Router", "v3.Routr", 1), &probe); err == nil {
		t.Fatal("an unknown type was taken")
	}
}

// section returns the first yaml block after a heading.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/proxies.md has no %q", heading)
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	if !ok {
		t.Fatalf("%q has no yaml block", heading)
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

func decodeStrict(t *testing.T, text string, m proto.Message) {
	t.Helper()
	if err := decode(text, m); err != nil {
		t.Fatalf("%v in\n%s", err, text)
	}
}

// decode reads YAML into m through its JSON form, refusing unknown fields.
func decode(text string, m proto.Message) error {
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		return err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(j, m)
}
