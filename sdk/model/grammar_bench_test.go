package model

import "testing"

// The grammar is checked on every check: these are its costs on a typical
// action and resource.

func BenchmarkValidateResource(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = ValidateResource("/account/acc-0123456789abcdef/subscription/sub-0123456789abcdef/function/f/")
	}
}

func BenchmarkValidateAction(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = ValidateAction("function:get")
	}
}
