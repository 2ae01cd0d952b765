//go:build linux

package nftables

import (
	gnft "github.com/google/nftables"
)

// listTables returns the names of the family's tables in the calling
// thread's network namespace.
func listTables(fam family) ([]string, error) {
	c, err := gnft.New()
	if err != nil {
		return nil, err
	}
	defer c.CloseLasting()
	tf := gnft.TableFamilyIPv4
	if fam.Is6 {
		tf = gnft.TableFamilyIPv6
	}
	tables, err := c.ListTablesOfFamily(tf)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Name
	}
	return names, nil
}
