extension Duration {
    /// The duration in seconds, as the clocks of the engine, the runner and the simulator count.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
