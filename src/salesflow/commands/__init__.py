"""The commands of `salesflow.engine.Salesflow`, one module per area of the domain.

Each area is a mixin class over `EngineCore` (the ports and the unit of work of a
command); `Salesflow` composes them. ``salesflow.commands`` is private: hosts use
the commands through `Salesflow`.
"""
