// Package docs holds Warden's OpenAPI document, openapi.yaml, for the
// binary to serve (GET /v1/openapi.json) and the contract tests to check
// traffic against. The YAML is the source: it is what people edit and
// review, and JSON is made from it once, when first asked for.
package docs

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPIYAML returns the OpenAPI document as written. The caller must not
// change it.
func OpenAPIYAML() []byte { return openapiYAML }

// OpenAPIJSON returns the OpenAPI document as JSON, its members in the
// YAML's order. It is converted once; the caller must not change it.
func OpenAPIJSON() ([]byte, error) { return openapiJSON() }

var openapiJSON = sync.OnceValues(func() ([]byte, error) {
	out, err := YAMLToJSON(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	return out, nil
})

// YAMLToJSON converts a YAML document to JSON, keeping the order of
// mapping keys (yaml.v3's decoding into maps would lose it) and resolving
// anchors. Keys are written as strings whatever their YAML type, so that
// `200:` and `'200':` read the same.
func YAMLToJSON(in []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(in, &doc); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, &doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeJSON(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: a document holds one value, not %d", n.Line, len(n.Content))
		}
		return writeJSON(buf, n.Content[0])
	case yaml.AliasNode:
		return writeJSON(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			if key.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a mapping key must be a scalar", key.Line)
			}
			if key.Tag == "!!merge" {
				return fmt.Errorf("line %d: merge keys are not supported", key.Line)
			}
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, key.Value)
			buf.WriteByte(':')
			if err := writeJSON(buf, value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, item); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		return writeScalar(buf, n)
	default:
		return fmt.Errorf("line %d: unexpected YAML node kind %d", n.Line, n.Kind)
	}
	return nil
}

func writeScalar(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		buf.WriteString("null")
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return err
		}
		buf.WriteString(strconv.FormatBool(b))
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return err
		}
		buf.WriteString(strconv.FormatInt(i, 10))
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return err
		}
		// JSON has no infinities or NaN: encoding/json refuses them.
		out, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		buf.Write(out)
	default: // !!str, !!timestamp, !!binary: as written
		writeString(buf, n.Value)
	}
	return nil
}

// writeString writes s as a JSON string, leaving <, > and & as they are:
// the document is read by people too.
func writeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode's newline
}
