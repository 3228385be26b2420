import Reactor
print(BackendKind.availableHere)
