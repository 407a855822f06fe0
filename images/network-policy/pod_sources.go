// Added to sigs.k8s.io/kube-network-policies (package networkpolicy) by the appliance's build
// (appliance/components/network_policy/hooks.py), which calls podSourceChains right after upstream's
// POSTROUTING accept rules (DNS, ICMPv6 neighbours, root's own traffic, established) and checks
// unknownPodSource first in evaluatePacket.
//
// Upstream queues a packet only when its source or destination is in the set of local pods that policies
// select, and that set is filled from the API once a pod's IP is published: a new pod's first connections
// leave unjudged. And its chain hooks POSTROUTING, which packets a pod sends to its own node never cross, so
// a pod reaches its node's ports (kubelet, node_exporter, kube-proxy) whatever its egress policy says.
// With --pod-cidrs, every new connection from a pod address is judged, in POSTROUTING and in INPUT, and one
// from a pod address no pod is known by yet is dropped (TCP tries again a second later, by which time the pod
// is known).

package networkpolicy

import (
	"flag"
	"net"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

var podCIDRsFlag = flag.String("pod-cidrs", "", "comma-separated pod address ranges: every new connection from them is judged, also to this node (appliance)")

func podCIDRs() []*net.IPNet {
	var out []*net.IPNet
	for _, s := range strings.Split(*podCIDRsFlag, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			klog.Errorf("--pod-cidrs: %q is not a CIDR: %v", s, err)
			continue
		}
		out = append(out, n)
	}
	return out
}

// unknownPodSource: the packet comes from a pod address that no pod is known by (yet).
func (c *Controller) unknownPodSource(p packet) bool {
	for _, n := range podCIDRs() {
		if n.Contains(p.srcIP) {
			return c.getPodAssignedToIP(p.srcIP.String()) == nil
		}
	}
	return false
}

// podSourceChains queues new connections from pod addresses in POSTROUTING (before upstream's set rules)
// and in a chain of ours on INPUT (to this node's own addresses).
func (c *Controller) podSourceChains(nft *nftables.Conn, table *nftables.Table, post *nftables.Chain) {
	cidrs := podCIDRs()
	if len(cidrs) == 0 {
		return
	}
	input := nft.AddChain(&nftables.Chain{
		Name:     "pod-to-node",
		Table:    table,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookInput,
		Priority: nftables.ChainPriorityFilter,
	})
	// ct state established,related accept (only new connections are judged)
	nft.AddRule(&nftables.Rule{Table: table, Chain: input, Exprs: []expr.Any{
		&expr.Ct{Register: 0x1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 0x1, DestRegister: 0x1, Len: 0x4, Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 0x1, Data: []byte{0, 0, 0, 0}},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	for _, n := range cidrs {
		proto, offset, size := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
		ip := n.IP.To4()
		if ip == nil {
			proto, offset, size, ip = unix.NFPROTO_IPV6, 8, 16, n.IP.To16()
		}
		rule := func() []expr.Any {
			return []expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 0x1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 0x1, Data: []byte{proto}},
				&expr.Payload{DestRegister: 0x1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: size},
				&expr.Bitwise{SourceRegister: 0x1, DestRegister: 0x1, Len: size, Mask: n.Mask, Xor: make([]byte, size)},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 0x1, Data: ip.Mask(n.Mask)},
				c.queueExpr(),
			}
		}
		nft.AddRule(&nftables.Rule{Table: table, Chain: input, Exprs: rule()})
		nft.AddRule(&nftables.Rule{Table: table, Chain: post, Exprs: rule()})
	}
}
