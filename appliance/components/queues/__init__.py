"""queues: Kueue, per-user ClusterQueues and LocalQueues from user-profiles' users."""
