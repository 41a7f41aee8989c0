package rdma

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/Mellanox/rdmamap"
)

// ErrUnavailable reports that no RDMA device can be used here; the wrapped
// message says why (no driver loaded, no device, sysfs unreadable).
var ErrUnavailable = errors.New("rdma: unavailable")

// Device is one RDMA device as sysfs describes it
// (/sys/class/infiniband/<Name>).
type Device struct {
	Name      string   // kernel name, e.g. "mlx5_0"
	NodeType  string   // node_type, e.g. "1: CA"
	NodeGUID  string   // node_guid, e.g. "b859:9f03:00d4:1a3e"
	FWVersion string   // fw_ver
	HCAType   string   // hca_type, e.g. "MT4129"
	PCIBusID  string   // PCI address of the NIC, e.g. "0000:3b:00.0" (empty if not PCI)
	NetDevs   []string // network devices of the NIC (device/net), sorted
	CharDevs  []string // /dev/infiniband character devices (uverbs, umad, ...), from rdmamap on a live system
	Ports     []Port   // ports in number order
}

// Port is one port of a Device (/sys/class/infiniband/<dev>/ports/<N>).
type Port struct {
	Number    int    // port number, from 1
	LinkLayer string // "InfiniBand" or "Ethernet" (RoCE)
	State     string // logical state without its number, e.g. "ACTIVE", "DOWN"
	PhysState string // physical state without its number, e.g. "LinkUp"
	Rate      string // e.g. "400 Gb/sec (4X NDR)"
	LID       string // InfiniBand LID (hex), empty on Ethernet
	GIDs      []GID  // the non-zero entries of the GID table
}

// GID is one non-zero GID table entry.
type GID struct {
	Index  int    // table index
	GID    string // e.g. "fe80:0000:0000:0000:ba59:9fff:fed4:1a3e"
	Type   string // gid_attrs/types, e.g. "RoCE v2", "IB/RoCE v1" (may be empty)
	NetDev string // gid_attrs/ndevs, the netdev the GID belongs to (RoCE only)
}

// Active reports whether the port's logical state is ACTIVE.
func (p Port) Active() bool { return p.State == "ACTIVE" }

// Devices lists the RDMA devices of this machine: the names come from
// rdmamap.GetRdmaDeviceList and the details from /sys. With no device it
// returns an error wrapping ErrUnavailable that says why.
func Devices() ([]Device, error) {
	names := rdmamap.GetRdmaDeviceList()
	if len(names) == 0 {
		if _, err := os.Stat(rdmamap.RdmaClassDir); err != nil {
			return nil, fmt.Errorf("%w: %s does not exist (no RDMA driver loaded)", ErrUnavailable, rdmamap.RdmaClassDir)
		}
		return nil, fmt.Errorf("%w: no device under %s", ErrUnavailable, rdmamap.RdmaClassDir)
	}
	devs, err := readDevices("/", names)
	if err != nil {
		return nil, err
	}
	for i := range devs {
		devs[i].CharDevs = rdmamap.GetRdmaCharDevices(devs[i].Name)
	}
	return devs, nil
}

// DevicesAt reads the devices of the sysfs tree below root (root +
// "/sys/class/infiniband/..."), for tests and containers that mount the
// host's sysfs elsewhere. It returns an error wrapping ErrUnavailable when
// the tree holds no device or a device's ports cannot be read.
func DevicesAt(root string) ([]Device, error) {
	entries, err := os.ReadDir(filepath.Join(root, "sys/class/infiniband"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no device under %s", ErrUnavailable, filepath.Join(root, "sys/class/infiniband"))
	}
	return readDevices(root, names)
}

func readDevices(root string, names []string) ([]Device, error) {
	sort.Strings(names)
	devs := make([]Device, 0, len(names))
	for _, name := range names {
		if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			return nil, fmt.Errorf("%w: bad device name %q", ErrUnavailable, name)
		}
		d, err := readDevice(filepath.Join(root, "sys/class/infiniband", name), name)
		if err != nil {
			return nil, err
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func readDevice(dir, name string) (Device, error) {
	d := Device{
		Name:      name,
		NodeType:  readAttr(dir, "node_type"),
		NodeGUID:  readAttr(dir, "node_guid"),
		FWVersion: readAttr(dir, "fw_ver"),
		HCAType:   readAttr(dir, "hca_type"),
	}
	for _, line := range strings.Split(readAttr(dir, "device/uevent"), "\n") {
		if v, ok := strings.CutPrefix(line, "PCI_SLOT_NAME="); ok {
			d.PCIBusID = v
		}
	}
	if nets, err := os.ReadDir(filepath.Join(dir, "device/net")); err == nil {
		for _, n := range nets {
			d.NetDevs = append(d.NetDevs, n.Name())
		}
		sort.Strings(d.NetDevs)
	}
	ports, err := os.ReadDir(filepath.Join(dir, "ports"))
	if err != nil {
		return d, fmt.Errorf("%w: device %s: %v", ErrUnavailable, name, err)
	}
	for _, pe := range ports {
		num, err := strconv.Atoi(pe.Name())
		if err != nil {
			continue
		}
		d.Ports = append(d.Ports, readPort(filepath.Join(dir, "ports", pe.Name()), num))
	}
	sort.Slice(d.Ports, func(i, j int) bool { return d.Ports[i].Number < d.Ports[j].Number })
	return d, nil
}

func readPort(dir string, num int) Port {
	p := Port{
		Number:    num,
		LinkLayer: readAttr(dir, "link_layer"),
		State:     stripNumber(readAttr(dir, "state")),
		PhysState: stripNumber(readAttr(dir, "phys_state")),
		Rate:      readAttr(dir, "rate"),
	}
	if p.LinkLayer == "InfiniBand" {
		p.LID = readAttr(dir, "lid")
	}
	gids, _ := os.ReadDir(filepath.Join(dir, "gids"))
	for _, g := range gids {
		idx, err := strconv.Atoi(g.Name())
		if err != nil {
			continue
		}
		v := readAttr(dir, "gids/"+g.Name())
		if v == "" || strings.Trim(v, "0:") == "" {
			continue
		}
		p.GIDs = append(p.GIDs, GID{
			Index:  idx,
			GID:    v,
			Type:   readAttr(dir, "gid_attrs/types/"+g.Name()),
			NetDev: readAttr(dir, "gid_attrs/ndevs/"+g.Name()),
		})
	}
	sort.Slice(p.GIDs, func(i, j int) bool { return p.GIDs[i].Index < p.GIDs[j].Index })
	return p
}

// readAttr returns a sysfs attribute's text without surrounding space, or ""
// when it cannot be read (sysfs returns EINVAL for some unset attributes).
func readAttr(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// stripNumber turns "4: ACTIVE" into "ACTIVE".
func stripNumber(s string) string {
	if _, v, ok := strings.Cut(s, ": "); ok {
		return v
	}
	return s
}
