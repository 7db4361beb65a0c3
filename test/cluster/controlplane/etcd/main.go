// Command etcd is the etcd server, built from its Go module so that the test
// harness gets an etcd with the watch progress notifications kube-apiserver needs.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
