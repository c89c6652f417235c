import MeshCore

func readmeBlock4() throws { // readme-wrapper
// Sender
var schedule = DataCapsule()
schedule.setAsArray("appointments", [
    DataCapsule(["date": "01/01/2022", "title": "New Year Party"]),
    DataCapsule(["date": "25/12/2022", "title": "Christmas Party"]),
])
let data: MeshData = ["myName": "Jon", "mySchedule": .bytes(try schedule.pack())]

// Receiver's handler
let myName = try data.getString("myName")                       // Diarkis GetString
print("Hello \(myName)")
let mySchedule = try DataCapsule.unpack(data.getBytes("mySchedule"))
for item in try mySchedule.getAsArray("appointments") {
    print("Appointment: Date: \(try item.getAsString("date")) Title: \(try item.getAsString("title"))")
}
} // readme-wrapper
