<#
.SYNOPSIS
    Removes the rawlink NDIS protocol driver: stops it, uninstalls the protocol, deletes the driver package.

.DESCRIPTION
    The reverse of install.ps1. Steps, each with its own exit code on failure:
      1  administrator check
      2  sc.exe stop RAWLINK  (fails while a program still has \\.\RawLink open: close it first;
         this script opens nothing itself)
      3  netcfg -v -u RL_RAWLINK  (unbinds from every adapter, runs the INF's Remove sections)
      4  pnputil /delete-driver oemNN.inf for every staged copy of rawlink.inf in the driver store
    Exit code 0: nothing of rawlink is left (a restart may still be requested by netcfg).

.PARAMETER Force
    Continue when the service does not stop (the uninstall then completes at the next restart), and pass /force
    to pnputil.

.PARAMETER KeepPackage
    Leave the driver package in the driver store (skip step 4).
#>
[CmdletBinding()]
param(
    [switch] $Force,
    [switch] $KeepPackage
)

Set-StrictMode -Version 3
$ErrorActionPreference = 'Stop'

$ComponentId = 'RL_RAWLINK'
$ServiceName = 'RAWLINK'
$OriginalInf = 'rawlink.inf'

function Fail([int] $Code, [string] $Message) {
    Write-Host "rawlink uninstall: FAILED (exit $Code): $Message" -ForegroundColor Red
    exit $Code
}
function Step([string] $Message) { Write-Host "==> $Message" -ForegroundColor Cyan }
function Info([string] $Message) { Write-Host "    $Message" }

# --- 1. Administrator ---------------------------------------------------------------------------------------------
Step 'Checking for administrator rights'
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Fail 1 'run this script from an elevated PowerShell (Run as administrator).'
}

# --- 2. Stop the service --------------------------------------------------------------------------------------------
Step "Stopping the $ServiceName service"
$service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
if (-not $service) {
    Info 'the service does not exist (already removed?)'
} elseif ($service.Status -eq 'Stopped') {
    Info 'already stopped'
} else {
    $output = (& sc.exe stop $ServiceName 2>&1 | Out-String)
    try { $service.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(20)) } catch { }
    $service.Refresh()
    if ($service.Status -ne 'Stopped') {
        $output.TrimEnd() -split "`r?`n" | ForEach-Object { Info $_ }
        $message = ("the service is $($service.Status). A program still has \\.\RawLink open, or the driver is " +
            "waiting for NDIS to finish unbinding; close every rawlink program and try again.")
        if (-not $Force) { Fail 2 "$message (-Force continues; the driver then leaves at the next restart)" }
        Info "$message Continuing because of -Force."
    } else {
        Info 'stopped'
    }
}

# --- 3. netcfg -u ---------------------------------------------------------------------------------------------------
Step "Removing the protocol ($ComponentId)"
$query = (& netcfg.exe -q $ComponentId 2>&1 | Out-String)
if ($query -match 'not installed') {
    Info "$ComponentId is not installed"
} else {
    $output = (& netcfg.exe -v -u $ComponentId 2>&1 | Out-String)
    $code = $LASTEXITCODE
    $output.TrimEnd() -split "`r?`n" | ForEach-Object { Info $_ }
    $query = (& netcfg.exe -q $ComponentId 2>&1 | Out-String)
    if ($code -ne 0 -and $query -notmatch 'not installed') {
        Fail 3 "netcfg -u failed (exit code $code); see the output above and %windir%\INF\setupapi.app.log."
    }
    if ($output -match 'reboot') { Info 'netcfg asks for a restart to finish the removal.' }
}

# --- 4. Driver store ------------------------------------------------------------------------------------------------
if ($KeepPackage) {
    Step 'Leaving the driver package in the driver store (-KeepPackage)'
    exit 0
}
Step "Deleting staged copies of $OriginalInf from the driver store"
# netcfg -l staged the package as %windir%\INF\oemNN.inf. Find ours by content (the published name is arbitrary,
# and pnputil's text output is translated): a NetTrans INF whose Models section names RL_RAWLINK.
$published = @(Get-ChildItem -Path (Join-Path $env:windir 'INF') -Filter 'oem*.inf' -ErrorAction SilentlyContinue |
    Where-Object {
        $text = Get-Content -LiteralPath $_.FullName -Raw -ErrorAction SilentlyContinue
        $text -and ($text -match '(?im)^\s*Class\s*=\s*NetTrans\b') -and ($text -match "(?i)\b$ComponentId\b")
    } | ForEach-Object { $_.Name })
# The driver store keeps the original name in the package folder name (FileRepository\rawlink.inf_amd64_<hash>);
# pnputil /enum-drivers lists it as "Original Name". Report what we found for the record.
if ($published.Count -eq 0) {
    Info "no staged $OriginalInf found"
} else {
    foreach ($oem in $published) {
        $arguments = @('/delete-driver', $oem)
        if ($Force) { $arguments += '/force' }
        $output = (& pnputil.exe @arguments 2>&1 | Out-String)
        $code = $LASTEXITCODE
        $output.TrimEnd() -split "`r?`n" | ForEach-Object { Info $_ }
        if ($code -ne 0 -and (Test-Path -LiteralPath (Join-Path (Join-Path $env:windir 'INF') $oem))) {
            Fail 4 ("pnputil /delete-driver $oem failed (exit code $code). If the protocol is still installed, " +
                "restart and run this script again; -Force passes /force.")
        }
        Info "deleted $oem (original name $OriginalInf)"
    }
}

Step 'rawlink is removed'
exit 0
