// Added to sigs.k8s.io/kube-network-policies (package networkpolicy) by the appliance's build
// (appliance/components/network_policy/hooks.py), which also makes both `queue := ...` lines of controller.go call
// queueExpr.
//
// Upstream sends packets to userspace with nftables' own `queue` expression. Kernels built without
// CONFIG_NFT_QUEUE refuse it (ENOENT) and the agent then programs no rule at all, so it enforces
// nothing while looking healthy. Such kernels often still have nft_compat and the xtables NFQUEUE
// target (what iptables-nft uses), so where a probe finds the native expression refused, the same
// verdict is written as that target: NFQUEUE revision 3, struct xt_NFQ_info_v3
// {u16 queuenum; u16 queues_total; u16 flags}, flag 1 = bypass (fail open).

package networkpolicy

import (
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"k8s.io/klog/v2"
)

var (
	xtQueueOnce sync.Once
	xtQueue     bool
)

// queueExpr is the verdict that hands a packet to the agent's nfqueue.
func (c *Controller) queueExpr() expr.Any {
	xtQueueOnce.Do(func() { xtQueue = !nativeQueueWorks() })
	if !xtQueue {
		q := &expr.Queue{Num: uint16(c.config.QueueID)}
		if c.config.FailOpen {
			q.Flag = expr.QueueFlagBypass
		}
		return q
	}
	flags := uint16(0)
	if c.config.FailOpen {
		flags = 1
	}
	info := xt.Unknown(append(append(binaryutil.NativeEndian.PutUint16(uint16(c.config.QueueID)),
		binaryutil.NativeEndian.PutUint16(1)...), binaryutil.NativeEndian.PutUint16(flags)...))
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}

// nativeQueueWorks adds, then removes, a table whose one rule uses the native queue expression.
func nativeQueueWorks() bool {
	nft, err := nftables.New()
	if err != nil {
		return true // the real sync reports it
	}
	table := &nftables.Table{Name: "kube-network-policies-probe", Family: nftables.TableFamilyINet}
	nft.AddTable(table)
	chain := nft.AddChain(&nftables.Chain{Name: "probe", Table: table})
	nft.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{&expr.Queue{Num: 0, Flag: expr.QueueFlagBypass}}})
	err = nft.Flush()
	nft.DelTable(table)
	_ = nft.Flush()
	if err != nil {
		klog.Infof("the kernel refuses nftables' queue expression (%v): queueing with the xtables NFQUEUE target", err)
		return false
	}
	return true
}
