import Logging
import Mesh
import MeshCore
import MeshTransport

func readmeBlock2() async throws { // readme-wrapper
let key = try ClusterKey(contentsOfFile: "cluster.key")             // shared by every node (`mesh keygen > cluster.key`)
let node = try await MeshNode.start(
    configuration: .init(address: "127.0.0.1:8000", journalPath: "node.sqlite", clusterKey: key),
    logger: Logger(label: "game-server")
) { node in                                                          // handlers: before the first message is taken
    try node.handleCommand(1024) { data in                           // several handlers per ID run in order
        print("Hello \(try data.getString("myName"))")
        let schedule = try DataCapsule.unpack(data.getBytes("mySchedule"))
        for item in try schedule.getAsArray("appointments") { print(try item.getAsString("title")) }
        return nil                                                   // a request's response: first non-nil
    }
}
var schedule = DataCapsule()                                         // the seed scenario's packed capsule
schedule.setAsArray("appointments", [DataCapsule(["date": "01/01/2022", "title": "New Year Party"]),
                                     DataCapsule(["date": "25/12/2022", "title": "Christmas Party"])])
let delivery = try await node.send(1024, to: "127.0.0.1:8001",
                                   ["myName": "Jon", "mySchedule": .bytes(try schedule.pack())])  // returns once journaled
_ = await delivery.outcome()                                         // .confirmed once in the receiver's journal
let answer = try await node.sendRequest(2001, to: "127.0.0.1:8001", ["myName": "Jon"], timeout: .seconds(3))
print(answer)
await node.shutdown()
} // readme-wrapper
