// Package rdma discovers RDMA devices (rdmamap plus sysfs) and will hold the verbs transport.
//
// Upstream: github.com/Mellanox/rdmamap.
//
// This package is not built yet; this file says what it will hold.
package rdma
