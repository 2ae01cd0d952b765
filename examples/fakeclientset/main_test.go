package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := demo(ctx, &out); err != nil {
		t.Fatal(err)
	}
	want := "default/web:http -> [10.244.1.5:8080 10.244.2.7:8080]\ndefault/web:http -> [10.244.1.5:8080]\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}
