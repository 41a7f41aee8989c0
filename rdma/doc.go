// Package rdma discovers RDMA devices (InfiniBand and RoCE NICs) and is the
// home of Fireflyer's verbs transport for ep (a later, build-tagged backend).
//
// Discovery combines github.com/Mellanox/rdmamap (device list and character
// devices) with a sysfs reader of our own for what rdmamap lacks: ports, link
// layer (InfiniBand or Ethernet), port state, rate, GIDs with their RoCE type
// and the network devices behind each device. The sysfs reader takes a root
// directory, so tests point it at a fake tree under testdata.
//
// Upstream: github.com/Mellanox/rdmamap; DeepEP's NVSHMEM/IBGDA transport is
// what the verbs backend will replace.
//
// The shortest useful program:
//
//	devs, err := rdma.Devices()
//	if errors.Is(err, rdma.ErrUnavailable) {
//		fmt.Println("no RDMA:", err)
//	}
//	for _, d := range devs {
//		fmt.Println(d.Name, d.Ports[0].LinkLayer, d.Ports[0].State)
//	}
//
// Where it sits: a compute package (docs/architecture.md) beside ep, whose
// verbs transport it will hold; it imports no other package of the module.
package rdma
