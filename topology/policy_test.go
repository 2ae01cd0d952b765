package topology

import "testing"

func TestPolicyUses(t *testing.T) {
	tests := []struct {
		p                    Policy
		wantCluster, wantLoc bool
	}{
		{Policy{}, true, false},
		{Policy{ExternallyAccessible: true}, true, false},
		{Policy{ExternalLocal: true}, true, false},
		{Policy{ExternalLocal: true, ExternallyAccessible: true}, true, true},
		{Policy{InternalLocal: true}, false, true},
		{Policy{InternalLocal: true, ExternallyAccessible: true}, true, true},
		{Policy{InternalLocal: true, ExternalLocal: true}, false, true},
		{Policy{InternalLocal: true, ExternalLocal: true, ExternallyAccessible: true}, true, true},
	}
	for _, tt := range tests {
		if got := tt.p.UsesClusterEndpoints(); got != tt.wantCluster {
			t.Errorf("%+v.UsesClusterEndpoints() = %v, want %v", tt.p, got, tt.wantCluster)
		}
		if got := tt.p.UsesLocalEndpoints(); got != tt.wantLoc {
			t.Errorf("%+v.UsesLocalEndpoints() = %v, want %v", tt.p, got, tt.wantLoc)
		}
		if !tt.p.UsesClusterEndpoints() && !tt.p.UsesLocalEndpoints() {
			t.Errorf("%+v uses neither list", tt.p)
		}
	}
}
