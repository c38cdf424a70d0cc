// The vhost-user target counts this process's descriptors before and after each input: nothing else may run meanwhile.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
