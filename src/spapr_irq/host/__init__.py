"""The host kernel: its KVM, the VM's ioctls and the three in-kernel interrupt devices.

``host`` states what a host is; ``uapi`` holds the ABI numbers; ``kvm`` is one VM's view of the
kernel (capabilities, devices, vCPUs, RTAS tokens, fault injection); ``xics`` (book3s_xics.c) and
``xive_native`` (book3s_xive_native.c) are the devices behind KVM_DEV_TYPE_XICS and _XIVE.
"""
