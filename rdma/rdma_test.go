package rdma

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDevicesAtFakeSysfs(t *testing.T) {
	devs, err := DevicesAt("testdata/sysfs")
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{
		{
			Name: "mlx5_0", NodeType: "1: CA", NodeGUID: "b859:9f03:00d4:1a3e", FWVersion: "28.39.1002",
			HCAType: "MT4129", PCIBusID: "0000:3b:00.0",
			Ports: []Port{{
				Number: 1, LinkLayer: "InfiniBand", State: "ACTIVE", PhysState: "LinkUp",
				Rate: "400 Gb/sec (4X NDR)", LID: "0x1a",
				GIDs: []GID{{Index: 0, GID: "fe80:0000:0000:0000:b859:9f03:00d4:1a3e"}},
			}},
		},
		{
			Name: "mlx5_1", NodeType: "1: CA", NodeGUID: "0c42:a103:0065:7e20", FWVersion: "22.36.1010",
			HCAType: "MT4125", PCIBusID: "0000:86:00.0", NetDevs: []string{"ens1f0"},
			Ports: []Port{{
				Number: 1, LinkLayer: "Ethernet", State: "DOWN", PhysState: "Disabled",
				Rate: "100 Gb/sec (2X HDR)",
				GIDs: []GID{
					{Index: 0, GID: "fe80:0000:0000:0000:0e42:a1ff:fe65:7e20", Type: "IB/RoCE v1", NetDev: "ens1f0"},
					{Index: 1, GID: "fe80:0000:0000:0000:0e42:a1ff:fe65:7e20", Type: "RoCE v2", NetDev: "ens1f0"},
					{Index: 3, GID: "0000:0000:0000:0000:0000:ffff:c0a8:0a05", Type: "RoCE v2", NetDev: "ens1f0"},
				},
			}},
		},
	}
	if diff := cmp.Diff(want, devs); diff != "" {
		t.Fatalf("devices (-want +got):\n%s", diff)
	}
	if !devs[0].Ports[0].Active() || devs[1].Ports[0].Active() {
		t.Error("Active() disagrees with the port states")
	}
}

func TestDevicesAtEmpty(t *testing.T) {
	for _, root := range []string{"testdata/empty", "testdata/does-not-exist"} {
		if _, err := DevicesAt(root); !errors.Is(err, ErrUnavailable) {
			t.Errorf("DevicesAt(%q): %v, want ErrUnavailable", root, err)
		}
	}
}

// TestDevicesLive runs the real discovery. On a machine without RDMA (CI,
// laptops) it must say so with ErrUnavailable rather than fail or panic.
func TestDevicesLive(t *testing.T) {
	devs, err := Devices()
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Devices: %v (want nil or ErrUnavailable)", err)
		}
		t.Logf("no RDMA here: %v", err)
		return
	}
	for _, d := range devs {
		if d.Name == "" || len(d.Ports) == 0 {
			t.Errorf("device %+v has no name or ports", d)
		}
	}
}

func ExampleDevicesAt() {
	devs, err := DevicesAt("testdata/sysfs")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range devs {
		p := d.Ports[0]
		fmt.Println(d.Name, d.PCIBusID, p.LinkLayer, p.State, len(p.GIDs), "GIDs")
	}
	// Output:
	// mlx5_0 0000:3b:00.0 InfiniBand ACTIVE 1 GIDs
	// mlx5_1 0000:86:00.0 Ethernet DOWN 3 GIDs
}

// TestDeviceWithoutPorts: a device directory without ports/ fails with an
// error wrapping ErrUnavailable that names the device (it used to wrap only
// the fs.PathError).
func TestDeviceWithoutPorts(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sys/class/infiniband/rxe0"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := DevicesAt(root)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "rxe0") {
		t.Fatalf("err %v, want ErrUnavailable naming rxe0", err)
	}
}
