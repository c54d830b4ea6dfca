"""The framework-free core: notifications, audiences, principals and read state."""
