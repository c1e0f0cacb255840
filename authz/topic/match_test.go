package topic_test

import (
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name          string
		filter, topic string
		want          bool
	}{
		{"equal", "a/b", "a/b", true},
		{"different", "a/b", "a/c", false},
		{"shorter topic", "a/b", "a", false},
		{"longer topic", "a", "a/b", false},
		{"plus", "a/+/c", "a/b/c", true},
		{"plus empty level", "a/+/c", "a//c", true},         // [MQTT-4.7.1-3]
		{"plus one level only", "a/+", "a/b/c", false},      // [MQTT-4.7.1-3]
		{"plus needs a level", "a/+", "a", false},           // [MQTT-4.7.1-3]
		{"hash", "a/#", "a/b/c", true},                      // [MQTT-4.7.1-2]
		{"hash parent", "a/#", "a", true},                   // [MQTT-4.7.1-2]
		{"hash root", "#", "a/b", true},                     // [MQTT-4.7.1-2]
		{"hash empty level", "a/#", "a/", true},             // [MQTT-4.7.1-2]
		{"plus then hash parent", "a/+/#", "a/b", true},     // [MQTT-4.7.1-2]
		{"plus then hash needs level", "a/+/#", "a", false}, // [MQTT-4.7.1-2]
		{"dollar not by hash", "#", "$SYS/x", false},        // [MQTT-4.7.2-1]
		{"dollar not by plus", "+/x", "$SYS/x", false},      // [MQTT-4.7.2-1]
		{"dollar by literal", "$SYS/#", "$SYS/x", true},     // [MQTT-4.7.2-1]
		{"dollar later level", "a/+", "a/$x", true},         // [MQTT-4.7.2-1] is about the first level only
		{"case-sensitive", "A/b", "a/b", false},             // [MQTT-4.7.3-4]
		{"leading slash", "+/a", "/a", true},                // [MQTT-4.7.1-3]
		{"empty filter", "", "a", false},
		{"empty topic", "#", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := topic.Match(tt.filter, tt.topic); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
			}
			if tt.filter != "" && tt.topic != "" {
				if ref := refMatch(tt.filter, tt.topic); ref != tt.want {
					t.Errorf("reference match(%q, %q) = %v, want %v", tt.filter, tt.topic, ref, tt.want)
				}
			}
		})
	}
}

// SPEC 3.2: F ⊆ T level by level.
func TestSubset(t *testing.T) {
	tests := []struct {
		name string
		f, t string
		want bool
	}{
		{"equal literal", "a/b", "a/b", true},
		{"literal under plus", "a/b", "a/+", true},
		{"literal under hash", "a/b/c", "a/#", true},
		{"literal under earlier hash", "a/b/c", "#", true},
		{"literal differs", "a/b", "a/c", false},
		{"plus under plus", "a/+", "a/+", true},
		{"plus under hash", "a/+", "a/#", true},
		{"plus not under literal", "a/+", "a/b", false},
		{"hash under hash", "a/#", "a/#", true},
		{"hash under earlier hash", "a/b/#", "a/#", true},
		{"hash not under plus", "a/#", "a/+", false},
		{"hash not under later hash", "a/#", "a/b/#", false},
		{"hash parent not under plus hash", "a/#", "a/+/#", false}, // "a" is matched by a/# only
		{"root hash under plus hash", "#", "+/#", true},            // every topic has a first level
		{"plus hash under root hash", "+/#", "#", true},
		{"root hash not under plus", "#", "+", false},
		{"shorter f", "a", "a/b", false},
		{"shorter f parent of hash", "a", "a/#", true},
		{"shorter f not under plus hash", "a", "a/+/#", false},
		{"longer f", "a/b", "a", false},
		{"dollar literal not under hash", "$SYS/x", "#", false},     // [MQTT-4.7.2-1]
		{"dollar literal not under plus", "$SYS/x", "+/x", false},   // [MQTT-4.7.2-1]
		{"dollar under dollar", "$SYS/x", "$SYS/#", true},           // [MQTT-4.7.2-1]
		{"wildcard f under dollar literal", "+/x", "$SYS/x", false}, // SPEC 3.2
		{"two templates never combine", "a/+", "a/b", false},        // SPEC 3.2
		{"empty level", "a//b", "a/+/b", true},
		{"empty first level hash", "/#", "/+/#", true}, // the topic "" does not exist
		{"empty first level hash parent", "/#", "/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := topic.Subset(tt.f, tt.t); got != tt.want {
				t.Errorf("Subset(%q, %q) = %v, want %v", tt.f, tt.t, got, tt.want)
			}
			if ref, w := bruteSubset(tt.f, tt.t); ref != tt.want {
				t.Errorf("brute-force subset(%q, %q) = %v (witness %q), want %v", tt.f, tt.t, ref, w, tt.want)
			}
		})
	}
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"equal", "a/b", "a/b", true},
		{"plus literal", "a/+", "a/b", true},
		{"disjoint", "a/b", "a/c", false},
		{"hash parent", "a/#", "a", true},
		{"hash deeper", "a/#", "a/b/+/c", true},
		{"plus hash vs parent", "a/+/#", "a", false},
		{"depths differ", "a/+", "+", false},
		{"dollar vs hash", "$SYS/#", "#", false}, // [MQTT-4.7.2-1]
		{"dollar vs dollar", "$SYS/#", "$SYS/a", true},
		{"two roots", "#", "+/x", true},
		{"only the empty topic", "+", "/#", false}, // the topic "" does not exist
		{"empty first level", "/#", "+/+", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := topic.Overlap(tt.a, tt.b); got != tt.want {
				t.Errorf("Overlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := topic.Overlap(tt.b, tt.a); got != tt.want {
				t.Errorf("Overlap(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
			}
			if ref := bruteOverlap(tt.a, tt.b); ref != tt.want {
				t.Errorf("brute-force overlap(%q, %q) = %v, want %v", tt.a, tt.b, ref, tt.want)
			}
		})
	}
}

// The per-packet path allocates nothing (SPEC 3.4 runs it on every PUBLISH).
func TestNoAllocations(t *testing.T) {
	name := "devices/dev-17/telemetry/temperature"
	filter := "devices/+/telemetry/#"
	allocs := testing.AllocsPerRun(100, func() {
		_ = topic.ValidateName(name)
		_ = topic.ValidateFilter(filter)
		_ = topic.Match(filter, name)
		_ = topic.Subset("devices/dev-17/#", filter)
		_ = topic.Overlap(filter, "devices/#")
		_, _, _, _ = topic.SplitShared("$share/g/devices/+/telemetry/#")
		_, _, _, _ = topic.SplitShared("$share//x")
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per run, want 0", allocs)
	}
}

// Generators over a small alphabet, so that random filters share levels
// often enough to be interesting.
var (
	topicLevels = []string{"a", "b", "", "z"}
)

func genFilter() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		n := rapid.IntRange(1, 5).Draw(t, "levels")
		ls := make([]string, n)
		for i := range ls {
			choices := []string{"a", "b", "", "+"}
			if i == 0 {
				choices = append(choices, "$s")
			}
			if i == n-1 {
				choices = append(choices, "#")
			}
			ls[i] = rapid.SampledFrom(choices).Draw(t, "level")
		}
		if f := strings.Join(ls, "/"); f != "" {
			return f
		}
		return "a"
	})
}

// genTopicFor draws a topic that f matches, by instantiating its wildcards.
func genTopicFor(t *rapid.T, f string) string {
	var ls []string
	for i, l := range strings.Split(f, "/") {
		switch l {
		case "+":
			ls = append(ls, rapid.SampledFrom(topicLevels).Draw(t, "plus"))
		case "#":
			k := rapid.IntRange(0, 3).Draw(t, "hash levels")
			if i == 0 || (i == 1 && ls[0] == "") {
				k = max(k, 1) // the parent would be the empty topic
			}
			for range k {
				ls = append(ls, rapid.SampledFrom(topicLevels).Draw(t, "hash"))
			}
		default:
			ls = append(ls, l)
		}
	}
	topic := strings.Join(ls, "/")
	if topic == "" {
		return "a" // only f == "+" gets here
	}
	return topic
}

// SPEC 3.2: Subset is sound (every topic of F is matched by T) and complete
// (when false, a topic of F that T does not match can be constructed).
func TestSubsetProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := genFilter().Draw(rt, "F")
		tf := genFilter().Draw(rt, "T")
		if topic.Subset(f, tf) {
			for range 8 {
				tp := genTopicFor(rt, f)
				if !topic.Match(f, tp) {
					rt.Fatalf("generated topic %q does not match F %q", tp, f)
				}
				if !topic.Match(tf, tp) {
					rt.Fatalf("Subset(%q, %q) is true but %q matches F and not T", f, tf, tp)
				}
			}
			if w, ok := witness(f, tf); ok {
				rt.Fatalf("Subset(%q, %q) is true but %q matches F and not T", f, tf, w)
			}
			return
		}
		w, ok := witness(f, tf)
		if !ok {
			rt.Fatalf("Subset(%q, %q) is false but no topic of F escapes T", f, tf)
		}
		if !topic.Match(f, w) || topic.Match(tf, w) {
			rt.Fatalf("witness %q: Match(F %q) = %v, Match(T %q) = %v; want true, false",
				w, f, topic.Match(f, w), tf, topic.Match(tf, w))
		}
	})
}

// Match agrees with the reference on random filters and topics.
func TestMatchProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := genFilter().Draw(rt, "filter")
		var tp string
		if rapid.Bool().Draw(rt, "instantiate") {
			tp = genTopicFor(rt, f)
		} else {
			tp = strings.ReplaceAll(strings.ReplaceAll(genFilter().Draw(rt, "topic"), "+", "a"), "#", "b")
		}
		if got, want := topic.Match(f, tp), refMatch(f, tp); got != want {
			rt.Fatalf("Match(%q, %q) = %v, want %v", f, tp, got, want)
		}
	})
}

// Overlap agrees with the brute force; Subset implies Overlap.
func TestOverlapProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a := genFilter().Draw(rt, "a")
		b := genFilter().Draw(rt, "b")
		got := topic.Overlap(a, b)
		if want := bruteOverlap(a, b); got != want {
			rt.Fatalf("Overlap(%q, %q) = %v, want %v", a, b, got, want)
		}
		if topic.Subset(a, b) && !got {
			rt.Fatalf("Subset(%q, %q) but no overlap", a, b)
		}
	})
}
