package topic_test

import (
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

func BenchmarkMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		topic.Match("devices/+/telemetry/#", "devices/6f1d0000-0000-4000-8000-00000000000a/telemetry/temp/1")
	}
}

func BenchmarkSubset(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		topic.Subset("devices/6f1d0000-0000-4000-8000-00000000000a/telemetry/+", "devices/+/telemetry/#")
	}
}

func BenchmarkValidateName(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = topic.ValidateName("devices/6f1d0000-0000-4000-8000-00000000000a/telemetry/temp/1")
	}
}

func BenchmarkResolveAll(b *testing.B) {
	tp, err := topic.ParseTemplate("devices/${client.authenticationName}/sites/${client.attributes.site}/#")
	if err != nil {
		b.Fatal(err)
	}
	v := topic.Vars{AuthenticationName: "6f1d", Attributes: map[string][]string{"site": {"berlin", "paris"}}}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = tp.ResolveAll(v)
	}
}
