package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lbkit/lbkit/internal/golden"
)

func runLbctl(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

func TestSampleTable(t *testing.T) {
	out, errOut, code := runLbctl()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkGolden(t, "sample-table.golden", out)
}

func TestSampleJSON(t *testing.T) {
	out, errOut, code := runLbctl("resolve", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkGolden(t, "sample-json.golden", out)
}

// TestJSONNulls checks the contract scripts rely on: lists are [] when
// empty, except clusterEndpoints/localEndpoints, which are null when the
// port does not use that policy.
func TestJSONNulls(t *testing.T) {
	out, _, code := runLbctl("resolve", "-o", "json")
	if code != 0 {
		t.Fatal("resolve failed")
	}
	var doc struct {
		Services []map[string]any `json:"services"`
		Warnings []string         `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	byName := map[string]map[string]any{}
	for _, s := range doc.Services {
		byName[s["name"].(string)] = s
		for _, k := range []string{"externalIPs", "loadBalancerIPs", "loadBalancerSourceRanges", "endpoints"} {
			if s[k] == nil {
				t.Errorf("%s: %s is null", s["name"], k)
			}
		}
	}
	checks := []struct {
		service, field string
		want           any
	}{
		{"default/web:http", "localEndpoints", nil},
		{"default/empty", "clusterEndpoints", []any{}},
		{"default/empty", "hasEndpoints", false},
		{"default/internal-local:grpc", "clusterEndpoints", nil},
		{"default/internal-local:grpc", "localEndpoints", []any{}},
		{"default/internal-local:grpc", "hasEndpoints", true},
		{"default/api:http", "localEndpoints", []any{"10.244.1.20:8080"}},
		{"default/shop:http", "sessionAffinityTimeoutSeconds", float64(600)},
		{"default/draining:http", "clusterEndpoints", []any{"10.244.1.50:8080", "10.244.2.50:8080"}},
	}
	for _, c := range checks {
		s, ok := byName[c.service]
		if !ok {
			t.Errorf("service %s missing", c.service)
			continue
		}
		if diff := cmp.Diff(c.want, s[c.field]); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", c.service, c.field, diff)
		}
	}
	if doc.Warnings == nil {
		t.Error("warnings is null")
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"resolve", "-o", "yaml"}, 2, "-o must be"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"resolve", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"resolve", "--ip-family", "IPv5"}, 2, "--ip-family"},
		{[]string{"resolve", "-f", "testdata/does-not-exist.yaml"}, 1, "does-not-exist.yaml"},
		{[]string{"resolve", "-f", "testdata/bad.yaml"}, 1, "document"},
		{[]string{"resolve", "--ip-family", "IPv6", "-o", "json"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errOut, code := runLbctl(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if !strings.Contains(errOut, tt.msg) {
				t.Errorf("stderr %q does not mention %q", errOut, tt.msg)
			}
		})
	}
}

func TestNodeFlag(t *testing.T) {
	out, _, code := runLbctl("resolve", "--node", "node-b", "-o", "json")
	if code != 0 {
		t.Fatal("resolve failed")
	}
	var doc struct {
		Node     string `json:"node"`
		Services []struct {
			Name           string   `json:"name"`
			LocalEndpoints []string `json:"localEndpoints"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Node != "node-b" {
		t.Errorf("node = %q", doc.Node)
	}
	for _, s := range doc.Services {
		if s.Name == "default/internal-local:grpc" {
			if diff := cmp.Diff([]string{"10.244.2.60:9090", "10.244.2.61:9090"}, s.LocalEndpoints); diff != "" {
				t.Errorf("local endpoints on node-b (-want +got):\n%s", diff)
			}
			return
		}
	}
	t.Error("internal-local not found")
}
