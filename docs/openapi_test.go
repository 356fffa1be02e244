package docs_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/wardenauthz/warden/docs"
)

// load loads and validates an OpenAPI document as kin-openapi reads it;
// openapi: 3.1.0 makes Validate use JSON Schema 2020-12.
func load(t *testing.T, data []byte) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		t.Fatalf("loading: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q is not 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError(), openapi3.EnableSchemaPatternValidation(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("validating: %v", err)
	}
	return doc
}

// TestOpenAPIValid: the YAML is a valid OpenAPI 3.1 document, and so is
// the JSON served from it, which says the same.
func TestOpenAPIValid(t *testing.T) {
	fromYAML := load(t, docs.OpenAPIYAML())
	js, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(js) {
		t.Fatal("the JSON is not valid JSON")
	}
	fromJSON := load(t, js)
	a, _ := json.Marshal(fromYAML)
	b, _ := json.Marshal(fromJSON)
	if string(a) != string(b) {
		t.Fatal("the JSON does not say what the YAML says")
	}
	if again, _ := docs.OpenAPIJSON(); &again[0] != &js[0] {
		t.Fatal("the JSON is converted again on each call")
	}
}

// TestOpenAPIErrors: every error response of every operation is the one
// error body, or net/http's plain text, and every operation says what its
// callers may get.
func TestOpenAPIErrors(t *testing.T) {
	doc := load(t, docs.OpenAPIYAML())
	errorSchema := doc.Components.Schemas["Error"]
	ops := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops++
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
			for code, resp := range op.Responses.Map() {
				if code == "default" || strings.HasPrefix(code, "2") || strings.HasPrefix(code, "3") {
					continue // not errors: successes and redirects
				}
				mt := resp.Value.Content.Get("application/json")
				if mt == nil {
					// The plain-text answers of net/http and Prometheus,
					// which Warden does not write.
					if resp.Value.Content.Get("text/plain") == nil {
						t.Errorf("%s %s %s: neither the error body nor plain text", method, path, code)
					}
					continue
				}
				if mt.Schema.Value != errorSchema.Value && !(path == "/readyz" && code == "503") {
					t.Errorf("%s %s %s: not the error body", method, path, code)
				}
			}
			if op.Responses.Default() != nil {
				t.Errorf("%s %s: a default response hides which status codes it answers", method, path)
			}
		}
	}
	if ops < 40 {
		t.Fatalf("only %d operations", ops)
	}
}

// TestYAMLToJSON: keys keep their order and read as strings, anchors are
// resolved, and scalars keep their types.
func TestYAMLToJSON(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"order and types", "b: 1\na: [x, 2.5, true, null, '3']\n200: <ok> & \"q\"\n",
			`{"b":1,"a":["x",2.5,true,null,"3"],"200":"<ok> & \"q\""}`},
		{"anchors", "a: &x {k: v}\nb: *x\n", `{"a":{"k":"v"},"b":{"k":"v"}}`},
		{"timestamps stay strings", "d: 2026-12-01\n", `{"d":"2026-12-01"}`},
		{"block text", "d: |\n  one\n  two\n", `{"d":"one\ntwo\n"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := docs.YAMLToJSON([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %s\nwant %s", got, tc.want)
			}
			var a, b any
			if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(tc.want), &b) != nil || !reflect.DeepEqual(a, b) {
				t.Fatal("not the same JSON")
			}
		})
	}
	for _, bad := range []string{"a: .inf\n", "a: [\n", "? [a]\n: b\n", "a: 1\n<<: {b: 2}\n"} {
		if out, err := docs.YAMLToJSON([]byte(bad)); err == nil {
			t.Errorf("%q: converted to %s", bad, out)
		}
	}
}
