using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Vhost.User.Tests")]
