// vsock-agent: the .NET program inside the real-guest test images. Every command prints OUT lines the
// host test reads (through the guest's /init: "OUT <name> <line>") and ends with "OK <what>" or "FAIL <why>".
//   serve                          Kestrel on vsock 8080 (HTTP/1.1) and 8081 (HTTP/2, gRPC) until POST /quit
//   http-get CID PORT PATH         HttpClient over VsockEndPoint, prints the body
//   seq-echo PORT COUNT            SEQPACKET listener: echoes COUNT messages one by one, printing each size
//   socket-api CONNECTPORT LISTENPORT  System.Net.Sockets.Socket with VsockEndPoint: ConnectAsync to the host, then
//                                  Bind/Listen/AcceptAsync for a host connection
//   host-serve UNIXPATH            ON THE HOST: Kestrel on a Unix socket (uds_path_P, where guests connecting
//                                  to host port P arrive), GET /from-guest, until killed
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using VsockAgent;

try
{
    return args.Length == 0 ? Usage() : args[0] switch
    {
        "serve" => await Serve.RunAsync(),
        "host-serve" when args.Length == 2 => await Serve.RunOnHostAsync(args[1]),
        "http-get" when args.Length == 4 => await Clients.HttpGetAsync(uint.Parse(args[1]), uint.Parse(args[2]), args[3]),
        "seq-echo" when args.Length == 3 => await Clients.SeqEchoAsync(uint.Parse(args[1]), int.Parse(args[2])),
        "socket-api" when args.Length == 3 => await Clients.SocketApiAsync(uint.Parse(args[1]), uint.Parse(args[2])),
        "cid" => Clients.Cid(),
        _ => Usage(),
    };
}
catch (Exception e)
{
    Console.WriteLine($"FAIL {e.GetType().Name}: {e.Message.Replace('\n', ' ')}");
    return 1;
}

static int Usage()
{
    Console.WriteLine("FAIL usage: vsock-agent serve | host-serve UNIXPATH | http-get CID PORT PATH | seq-echo PORT COUNT | socket-api CONNECTPORT LISTENPORT | cid");
    return 2;
}

namespace VsockAgent
{
    internal static class Clients
    {
        public static int Cid()
        {
            Console.WriteLine($"OK cid {Vsock.Net.VsockSocket.GetLocalCid()}");
            return 0;
        }

        public static async Task<int> HttpGetAsync(uint cid, uint port, string path)
        {
            using var http = new HttpClient(Vsock.Net.VsockHttpHandler.ForVsock(cid, port)) { BaseAddress = new Uri("http://host") };
            using HttpResponseMessage response = await http.GetAsync(path);
            string body = await response.Content.ReadAsStringAsync();
            Console.WriteLine($"STATUS {(int)response.StatusCode}");
            Console.WriteLine($"BODY {body}");
            Console.WriteLine(response.IsSuccessStatusCode ? "OK http-get" : "FAIL http-get status " + (int)response.StatusCode);
            return response.IsSuccessStatusCode ? 0 : 1;
        }

        public static async Task<int> SeqEchoAsync(uint port, int count)
        {
            using var listener = Vsock.Net.VsockListener.Listen(port, SocketType.Seqpacket);
            Console.WriteLine($"LISTENING seqpacket {listener.LocalEndPoint}");
            (Socket socket, Vsock.Net.VsockEndPoint? peer) = await listener.AcceptAsync();
            using (socket)
            {
                Console.WriteLine($"ACCEPTED {peer}");
                byte[] buffer = new byte[256 * 1024];
                for (int i = 0; i < count; i++)
                {
                    int n = await socket.ReceiveAsync(buffer, SocketFlags.None);
                    Console.WriteLine($"MSG {i} {n} {Convert.ToHexString(SHA256.HashData(buffer.AsSpan(0, n)))[..16]}");
                    await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
                }
            }

            Console.WriteLine($"OK seq-echo {count}");
            return 0;
        }

        public static async Task<int> SocketApiAsync(uint connectPort, uint listenPort)
        {
            // Connect with Socket.ConnectAsync(EndPoint) on a socket from VsockSocket.Create.
            using (Socket client = Vsock.Net.VsockSocket.Create())
            {
                Console.WriteLine($"SOCKET family={client.AddressFamily} type={client.SocketType}");
                await client.ConnectAsync(new Vsock.Net.VsockEndPoint(Vsock.Net.VsockEndPoint.HostCid, connectPort));
                Console.WriteLine($"CONNECTED remote={client.RemoteEndPoint?.ToString() ?? "null"} family={client.AddressFamily}");
                await client.SendAsync(Encoding.ASCII.GetBytes("socket-api hello\n"), SocketFlags.None);
                client.Shutdown(SocketShutdown.Send);
                byte[] reply = new byte[64];
                int n = await client.ReceiveAsync(reply, SocketFlags.None);
                Console.WriteLine($"REPLY {Encoding.ASCII.GetString(reply, 0, n).Trim()}");
            }

            // Bind, Listen, AcceptAsync with the Socket API.
            using (Socket listener = Vsock.Net.VsockSocket.Create())
            {
                listener.Bind(new Vsock.Net.VsockEndPoint(Vsock.Net.VsockEndPoint.AnyCid, listenPort));
                listener.Listen(8);
                Console.WriteLine($"LISTENING socket-api {listener.LocalEndPoint}");
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                using Socket accepted = await listener.AcceptAsync(timeout.Token);
                Console.WriteLine($"ACCEPTED remote={accepted.RemoteEndPoint?.ToString() ?? "null"}");
                byte[] line = new byte[64];
                int n = await accepted.ReceiveAsync(line, SocketFlags.None);
                await accepted.SendAsync(Encoding.ASCII.GetBytes("guest got " + Encoding.ASCII.GetString(line, 0, n)), SocketFlags.None);
            }

            Console.WriteLine("OK socket-api");
            return 0;
        }
    }
}
